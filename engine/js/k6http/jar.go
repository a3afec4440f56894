package k6http

import (
	"net/http"
	"net/url"
	"time"

	"github.com/grafana/sobek"
)

// cookieJar returns the VU's cookie jar, emptied at every iteration.
func (in *instance) cookieJar() sobek.Value {
	j := in.vuJar()
	if in.jarObj == nil {
		in.jarObj = in.jarObject(j)
	}
	return in.jarObj
}

// newCookieJarObject is the http.CookieJar constructor: a jar of the
// script's own, passed with params.jar.
func (in *instance) newCookieJarObject(call sobek.ConstructorCall) *sobek.Object {
	return in.jarObject(newCookieJar())
}

func (in *instance) jarObject(j *cookieJar) *sobek.Object {
	rt := in.rt
	o := rt.NewObject()
	_ = o.DefineDataProperty("__jar", rt.ToValue(j), sobek.FLAG_FALSE, sobek.FLAG_FALSE, sobek.FLAG_FALSE)
	parseURL := func(what string, v sobek.Value) *url.URL {
		u, err := url.Parse(v.String())
		if err != nil || u.Host == "" {
			in.throw("%s: invalid URL %q", what, v.String())
		}
		return u
	}
	_ = o.Set("cookiesForURL", func(v sobek.Value) sobek.Value {
		u := parseURL("cookiesForURL", v)
		byName := map[string][]any{}
		var order []string
		for _, c := range j.jar.Cookies(u) {
			if _, ok := byName[c.Name]; !ok {
				order = append(order, c.Name)
			}
			byName[c.Name] = append(byName[c.Name], c.Value)
		}
		out := rt.NewObject()
		for _, n := range order {
			_ = out.Set(n, rt.NewArray(byName[n]...))
		}
		return out
	})
	_ = o.Set("set", func(call sobek.FunctionCall) sobek.Value {
		u := parseURL("set", call.Argument(0))
		c := &http.Cookie{Name: call.Argument(1).String(), Value: call.Argument(2).String(), Path: "/"}
		if opts, ok := call.Argument(3).(*sobek.Object); ok && !isNullish(opts) {
			for _, k := range opts.Keys() {
				v := opts.Get(k)
				switch k {
				case "domain":
					c.Domain = v.String()
				case "path":
					c.Path = v.String()
				case "expires":
					t, err := time.Parse(time.RFC1123, v.String())
					if err != nil {
						in.throw("set: the expires option %q must be a date in RFC 1123 form", v.String())
					}
					c.Expires = t
				case "max_age":
					c.MaxAge = int(v.ToInteger())
				case "secure":
					c.Secure = v.ToBoolean()
				case "http_only":
					c.HttpOnly = v.ToBoolean()
				}
			}
		}
		j.jar.SetCookies(u, []*http.Cookie{c})
		return sobek.Undefined()
	})
	remove := func(u *url.URL, name string) {
		for _, c := range j.jar.Cookies(u) {
			if name == "" || c.Name == name {
				j.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Path: "/", MaxAge: -1}})
				j.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Path: u.Path, MaxAge: -1}})
			}
		}
	}
	_ = o.Set("clear", func(v sobek.Value) { remove(parseURL("clear", v), "") })
	_ = o.Set("delete", func(v, name sobek.Value) { remove(parseURL("delete", v), name.String()) })
	return o
}
