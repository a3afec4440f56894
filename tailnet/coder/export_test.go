package coder

// NumDERPProxies is how many loopback DERP proxies c has started.
func NumDERPProxies(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.proxies)
}
