// Package k6encoding is k6's "k6/encoding" module: base64 in its four
// alphabets.
package k6encoding

import (
	"encoding/base64"
	"fmt"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/modules"
)

// Module is k6/encoding; it holds no state.
type Module struct{}

// New returns k6/encoding.
func New() *Module { return &Module{} }

// NewModuleInstance implements modules.Module.
func (*Module) NewModuleInstance(vu modules.VU) modules.Instance {
	return &instance{rt: vu.Runtime()}
}

type instance struct{ rt *sobek.Runtime }

// Exports implements modules.Instance.
func (in *instance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{"b64encode": in.b64encode, "b64decode": in.b64decode}}
}

// Encoding returns the base64 alphabet named by k6: std (default), rawstd,
// url or rawurl.
func Encoding(name string) (*base64.Encoding, error) {
	switch name {
	case "", "std":
		return base64.StdEncoding, nil
	case "rawstd":
		return base64.RawStdEncoding, nil
	case "url":
		return base64.URLEncoding, nil
	case "rawurl":
		return base64.RawURLEncoding, nil
	}
	return nil, fmt.Errorf("encoding %q is not one of std, rawstd, url, rawurl", name)
}

// Bytes returns the bytes of a string, an ArrayBuffer or a typed array.
func Bytes(v sobek.Value) ([]byte, bool) {
	switch x := v.Export().(type) {
	case string:
		return []byte(x), true
	case sobek.ArrayBuffer:
		return x.Bytes(), true
	case []byte:
		return x, true
	}
	if obj, ok := v.(*sobek.Object); ok {
		buf := obj.Get("buffer")
		if buf == nil {
			return nil, false
		}
		if ab, ok := buf.Export().(sobek.ArrayBuffer); ok {
			off, n := int(obj.Get("byteOffset").ToInteger()), int(obj.Get("byteLength").ToInteger())
			b := ab.Bytes()
			if off >= 0 && n >= 0 && off+n <= len(b) {
				return b[off : off+n], true
			}
		}
	}
	return nil, false
}

func strArg(v sobek.Value) string {
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return ""
	}
	return v.String()
}

func (in *instance) b64encode(input, enc sobek.Value) string {
	b, ok := Bytes(input)
	if !ok {
		panic(in.rt.NewTypeError("b64encode: the input must be a string or an ArrayBuffer"))
	}
	e, err := Encoding(strArg(enc))
	if err != nil {
		panic(in.rt.NewTypeError("b64encode: %s", err.Error()))
	}
	return e.EncodeToString(b)
}

func (in *instance) b64decode(input, enc, format sobek.Value) sobek.Value {
	e, err := Encoding(strArg(enc))
	if err != nil {
		panic(in.rt.NewTypeError("b64decode: %s", err.Error()))
	}
	b, err := e.DecodeString(input.String())
	if err != nil {
		panic(in.rt.NewGoError(fmt.Errorf("b64decode: %w", err)))
	}
	if strArg(format) == "s" {
		return in.rt.ToValue(string(b))
	}
	return in.rt.ToValue(in.rt.NewArrayBuffer(b))
}
