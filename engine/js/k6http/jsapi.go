package k6http

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/js/k6encoding"
)

// fileData is what http.file() returns: a file for a multipart body.
type fileData struct {
	Data        any    `js:"data"`
	Filename    string `js:"filename"`
	ContentType string `js:"content_type"`
}

// taggedURL is what the http.url tagged template returns: the URL and the
// template as the name tag.
type taggedURL struct {
	URL  string `js:"url"`
	Name string `js:"name"`
}

// ToString returns the URL.
func (t *taggedURL) ToString() string { return t.URL }

// expectedStatuses is a response callback made by http.expectedStatuses.
type expectedStatuses struct {
	exact  []int
	ranges [][2]int
}

func defaultExpected() *expectedStatuses { return &expectedStatuses{ranges: [][2]int{{200, 399}}} }

func (e *expectedStatuses) match(status int) bool {
	for _, s := range e.exact {
		if s == status {
			return true
		}
	}
	for _, r := range e.ranges {
		if status >= r[0] && status <= r[1] {
			return true
		}
	}
	return false
}

func (in *instance) file(data sobek.Value, name, contentType sobek.Value) *fileData {
	f := &fileData{Data: data.Export(), ContentType: "application/octet-stream"}
	if !sobek.IsUndefined(name) && !sobek.IsNull(name) {
		f.Filename = name.String()
	} else {
		f.Filename = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if !sobek.IsUndefined(contentType) && !sobek.IsNull(contentType) {
		f.ContentType = contentType.String()
	}
	return f
}

func (in *instance) taggedURL(call sobek.FunctionCall) sobek.Value {
	parts, ok := call.Argument(0).(*sobek.Object)
	if !ok {
		in.throw("http.url must be used as a tagged template: http.url`https://host/${id}`")
	}
	n := int(parts.Get("length").ToInteger())
	var u, name strings.Builder
	for i := 0; i < n; i++ {
		s := parts.Get(strconv.Itoa(i)).String()
		u.WriteString(s)
		name.WriteString(s)
		if i+1 < n {
			u.WriteString(call.Argument(i + 1).String())
			name.WriteString("${}")
		}
	}
	return in.rt.ToValue(&taggedURL{URL: u.String(), Name: name.String()})
}

func (in *instance) expectedStatuses(call sobek.FunctionCall) sobek.Value {
	e := &expectedStatuses{}
	for i, a := range call.Arguments {
		switch x := a.Export().(type) {
		case int64:
			e.exact = append(e.exact, int(x))
		case float64:
			if x != float64(int(x)) {
				in.throw("http.expectedStatuses: argument %d (%v) must be an integer status or {min, max}", i+1, x)
			}
			e.exact = append(e.exact, int(x))
		default:
			obj, ok := a.(*sobek.Object)
			if !ok {
				in.throw("http.expectedStatuses: argument %d must be an integer status or {min, max}, got %s", i+1, a.String())
			}
			lo, hi := obj.Get("min"), obj.Get("max")
			if lo == nil || hi == nil || sobek.IsUndefined(lo) || sobek.IsUndefined(hi) {
				in.throw("http.expectedStatuses: argument %d must have both min and max", i+1)
			}
			e.ranges = append(e.ranges, [2]int{int(lo.ToInteger()), int(hi.ToInteger())})
		}
	}
	return in.rt.ToValue(e)
}

func (in *instance) setResponseCallback(cb sobek.Value) {
	if sobek.IsNull(cb) || sobek.IsUndefined(cb) {
		in.callback = nil
		return
	}
	e, ok := cb.Export().(*expectedStatuses)
	if !ok {
		in.throw("http.setResponseCallback: the callback must be made by http.expectedStatuses() (or be null)")
	}
	in.callback = e
}

// method returns http.get/post/…: with a body argument unless hasBody is
// false.
func (in *instance) method(m string, hasBody bool) func(sobek.FunctionCall) sobek.Value {
	return func(call sobek.FunctionCall) sobek.Value {
		body, params := sobek.Undefined(), call.Argument(1)
		if hasBody {
			body, params = call.Argument(1), call.Argument(2)
		}
		return in.run(m, call.Argument(0), body, params)
	}
}

func (in *instance) request(call sobek.FunctionCall) sobek.Value {
	return in.run(strings.ToUpper(call.Argument(0).String()), call.Argument(1), call.Argument(2), call.Argument(3))
}

// run makes one request on the VU goroutine.
func (in *instance) run(method string, u, body, params sobek.Value) sobek.Value {
	c := in.ready("http." + strings.ToLower(method))
	r := in.parse(method, u, body, params)
	hops := c.do(in.vu.Context(), r)
	return in.finish(r, hops)
}

// finish emits the metrics of a request's hops and returns the response
// of the last one; with the throw option a failed request throws.
func (in *instance) finish(r *request, hops []*hop) sobek.Value {
	in.emit(r, hops)
	last := hops[len(hops)-1]
	if last.redirectLimit {
		in.vu.State().Logger.Warn(fmt.Sprintf("Stopped after %d redirects and returned the redirection; pass { redirects: n } in request params or set global maxRedirects to silence this", r.redirects), "url", last.url)
	}
	if last.err != nil {
		if in.cfg.Throw {
			in.throw("%s", last.errMsg)
		}
		in.vu.State().Logger.Warn("Request Failed", "error", last.errMsg)
	}
	return in.response(r, last)
}

func isNullish(v sobek.Value) bool { return v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) }

// parse reads a request's arguments.
func (in *instance) parse(method string, uv, body, params sobek.Value) *request {
	r := &request{method: method, header: http.Header{}, redirects: in.cfg.maxRedirects(), responseType: "text", jar: in.vuJar(), expected: in.callback}
	if in.cfg.DiscardResponseBodies {
		r.responseType = "none"
	}
	var raw string
	switch x := uv.Export().(type) {
	case *taggedURL:
		raw, r.name = x.URL, x.Name
	default:
		if isNullish(uv) {
			in.throw("http.%s: the URL is missing", strings.ToLower(method))
		}
		raw = uv.String()
	}
	pu, err := url.Parse(raw)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		in.throw("http.%s: invalid URL %q: it must be an absolute http:// or https:// URL", strings.ToLower(method), raw)
	}
	r.url = pu
	if obj, ok := params.(*sobek.Object); ok && !isNullish(params) {
		in.parseParams(r, obj)
	}
	if !isNullish(body) {
		in.parseBody(r, body)
	}
	if len(r.compression) > 0 && r.body != nil {
		b, err := compress(r.body, r.compression)
		if err != nil {
			in.throw("http.%s: %w", strings.ToLower(method), err)
		}
		r.body = b
		r.header.Set("Content-Encoding", strings.Join(r.compression, ", "))
	}
	return r
}

func (in *instance) parseParams(r *request, p *sobek.Object) {
	for _, k := range p.Keys() {
		v := p.Get(k)
		if isNullish(v) && k != "jar" && k != "responseCallback" {
			continue
		}
		switch k {
		case "headers":
			if obj, ok := v.(*sobek.Object); ok {
				for _, hk := range obj.Keys() {
					r.header.Set(hk, obj.Get(hk).String())
				}
			}
		case "tags":
			if obj, ok := v.(*sobek.Object); ok {
				r.tags = make(map[string]string)
				for _, tk := range obj.Keys() {
					r.tags[tk] = obj.Get(tk).String()
				}
			}
		case "timeout":
			r.timeout = parseTimeout(in, v)
		case "redirects":
			r.redirects = int(v.ToInteger())
		case "responseType":
			switch t := v.String(); t {
			case "text", "binary", "none":
				r.responseType = t
			default:
				in.throw("params.responseType: %q is not one of text, binary, none", t)
			}
		case "auth":
			switch a := v.String(); a {
			case "basic":
			case "digest":
				r.digest = true
			default:
				in.throw("params.auth: %q is not supported; use basic or digest", a)
			}
		case "compression":
			for _, a := range strings.Split(v.String(), ",") {
				if a = strings.TrimSpace(a); a != "" {
					r.compression = append(r.compression, a)
				}
			}
		case "jar":
			if isNullish(v) {
				r.jar = nil
				continue
			}
			var j *cookieJar
			if o, isObj := v.(*sobek.Object); isObj {
				if jv := o.Get("__jar"); jv != nil {
					j, _ = jv.Export().(*cookieJar)
				}
			}
			if j == nil {
				in.throw("params.jar must be a cookie jar from http.cookieJar() or new http.CookieJar()")
			}
			r.jar = j
		case "responseCallback":
			if isNullish(v) {
				r.expected = nil
				continue
			}
			e, ok := v.Export().(*expectedStatuses)
			if !ok {
				in.throw("params.responseCallback must be made by http.expectedStatuses() (or be null)")
			}
			r.expected = e
		case "cookies":
			obj, ok := v.(*sobek.Object)
			if !ok {
				continue
			}
			for _, ck := range obj.Keys() {
				cv := obj.Get(ck)
				if co, ok := cv.(*sobek.Object); ok && co.ClassName() == "Object" {
					r.cookies = append(r.cookies, reqCookie{name: ck, value: co.Get("value").String(), replace: co.Get("replace") != nil && co.Get("replace").ToBoolean()})
					continue
				}
				r.cookies = append(r.cookies, reqCookie{name: ck, value: cv.String()})
			}
		}
	}
	if n := r.tags["name"]; n != "" {
		r.name = n
	}
}

func parseTimeout(in *instance, v sobek.Value) time.Duration {
	switch x := v.Export().(type) {
	case int64:
		return time.Duration(x) * time.Millisecond
	case float64:
		return time.Duration(x * float64(time.Millisecond))
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			if f, ferr := strconv.ParseFloat(x, 64); ferr == nil {
				return time.Duration(f * float64(time.Millisecond))
			}
			in.throw("params.timeout: %q is not a duration (use \"10s\" or milliseconds)", x)
		}
		return d
	}
	in.throw("params.timeout must be a duration string or milliseconds, got %s", v.String())
	return 0
}

// bytesOf returns the bytes of a string, ArrayBuffer or typed array.
func bytesOf(v sobek.Value) ([]byte, bool) { return k6encoding.Bytes(v) }

func (in *instance) parseBody(r *request, body sobek.Value) {
	if b, ok := bytesOf(body); ok {
		r.body = b
		return
	}
	obj, ok := body.(*sobek.Object)
	if !ok {
		r.body = []byte(body.String())
		return
	}
	keys := obj.Keys()
	multi := false
	for _, k := range keys {
		if _, ok := obj.Get(k).Export().(*fileData); ok {
			multi = true
		}
	}
	if !multi {
		form := url.Values{}
		for _, k := range keys {
			form.Set(k, obj.Get(k).String())
		}
		r.body = []byte(form.Encode())
		if r.header.Get("Content-Type") == "" {
			r.header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range keys {
		val := obj.Get(k)
		f, ok := val.Export().(*fileData)
		if !ok {
			_ = mw.WriteField(k, val.String())
			continue
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, k, f.Filename))
		h.Set("Content-Type", f.ContentType)
		w, _ := mw.CreatePart(h)
		b, ok := bytesOf(in.rt.ToValue(f.Data))
		if !ok {
			b = []byte(fmt.Sprint(f.Data))
		}
		_, _ = w.Write(b)
	}
	_ = mw.Close()
	r.body = buf.Bytes()
	r.header.Set("Content-Type", mw.FormDataContentType())
}

// response builds the JS response object of a hop.
func (in *instance) response(r *request, h *hop) sobek.Value {
	rt := in.rt
	o := rt.NewObject()
	set := func(k string, v any) { _ = o.Set(k, v) }
	set("status", h.status)
	set("status_text", h.statusText)
	set("url", h.url)
	set("proto", h.proto)
	set("remote_ip", h.remoteIP)
	set("remote_port", h.remotePort)
	set("tls_version", h.tlsVersion)
	set("error", h.errMsg)
	set("error_code", h.errCode)
	hdr := rt.NewObject()
	for k, vs := range h.header {
		_ = hdr.Set(k, strings.Join(vs, ", "))
	}
	set("headers", hdr)
	cookies := rt.NewObject()
	for _, ck := range h.setCookies {
		arr, _ := cookies.Get(ck.Name).(*sobek.Object)
		if arr == nil {
			arr = rt.NewArray()
			_ = cookies.Set(ck.Name, arr)
		}
		c := rt.NewObject()
		_ = c.Set("name", ck.Name)
		_ = c.Set("value", ck.Value)
		_ = c.Set("domain", ck.Domain)
		_ = c.Set("path", ck.Path)
		_ = c.Set("http_only", ck.HttpOnly)
		_ = c.Set("secure", ck.Secure)
		_ = c.Set("max_age", ck.MaxAge)
		exp := int64(0)
		if !ck.Expires.IsZero() {
			exp = ck.Expires.UnixMilli()
		}
		_ = c.Set("expires", exp)
		push, _ := sobek.AssertFunction(arr.Get("push"))
		_, _ = push(arr, c)
	}
	set("cookies", cookies)
	switch {
	case h.err != nil && h.body == nil, r.responseType == "none":
		set("body", sobek.Null())
	case r.responseType == "binary":
		set("body", rt.NewArrayBuffer(h.body))
	default:
		set("body", string(h.body))
	}
	t := rt.NewObject()
	tm := h.timings
	_ = t.Set("blocked", ms(tm.blocked))
	_ = t.Set("connecting", ms(tm.connecting))
	_ = t.Set("tls_handshaking", ms(tm.tlsHandshaking))
	_ = t.Set("sending", ms(tm.sending))
	_ = t.Set("waiting", ms(tm.waiting))
	_ = t.Set("receiving", ms(tm.receiving))
	_ = t.Set("duration", ms(tm.duration))
	set("timings", t)
	req := rt.NewObject()
	_ = req.Set("method", h.method)
	_ = req.Set("url", h.url)
	rh := rt.NewObject()
	keys := make([]string, 0, len(h.reqHeader))
	for k := range h.reqHeader {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		_ = rh.Set(k, h.reqHeader[k])
	}
	_ = req.Set("headers", rh)
	_ = req.Set("body", string(h.reqBody))
	rc := rt.NewObject()
	for _, ck := range h.reqCookies {
		arr, _ := rc.Get(ck.name).(*sobek.Object)
		if arr == nil {
			arr = rt.NewArray()
			_ = rc.Set(ck.name, arr)
		}
		c := rt.NewObject()
		_ = c.Set("name", ck.name)
		_ = c.Set("value", ck.value)
		_ = c.Set("replace", ck.replace)
		push, _ := sobek.AssertFunction(arr.Get("push"))
		_, _ = push(arr, c)
	}
	_ = req.Set("cookies", rc)
	set("request", req)
	var parsed sobek.Value
	set("json", func(call sobek.FunctionCall) sobek.Value {
		if h.body == nil {
			in.throw("the body is null: there is nothing to parse as JSON")
		}
		if parsed == nil {
			parse, _ := sobek.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
			v, err := parse(sobek.Undefined(), rt.ToValue(string(h.body)))
			if err != nil {
				panic(err)
			}
			parsed = v
		}
		if sel := call.Argument(0); !isNullish(sel) {
			return selectPath(rt, parsed, sel.String())
		}
		return parsed
	})
	return o
}

// selectPath follows a dotted path ("a.b.0.c", also "a.b[0]") into v; a
// missing step gives undefined.
func selectPath(rt *sobek.Runtime, v sobek.Value, path string) sobek.Value {
	path = strings.NewReplacer("[", ".", "]", "").Replace(path)
	for _, step := range strings.Split(path, ".") {
		if step == "" {
			continue
		}
		obj, ok := v.(*sobek.Object)
		if !ok || isNullish(v) {
			return sobek.Undefined()
		}
		if step == "#" {
			return obj.Get("length")
		}
		v = obj.Get(step)
		if v == nil {
			return sobek.Undefined()
		}
	}
	_ = rt
	return v
}
