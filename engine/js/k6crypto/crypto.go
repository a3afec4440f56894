// Package k6crypto is k6's "k6/crypto" module: hashes, HMAC and random
// bytes.
package k6crypto

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // k6/crypto offers md5 to scripts
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // k6/crypto offers sha1 to scripts
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/grafana/sobek"
	"golang.org/x/crypto/md4"       //nolint:staticcheck // k6/crypto offers md4 to scripts
	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // k6/crypto offers ripemd160 to scripts

	"github.com/cdeload/cdeload/engine/js/k6encoding"
	"github.com/cdeload/cdeload/engine/modules"
)

// Module is k6/crypto; it holds no state.
type Module struct{}

// New returns k6/crypto.
func New() *Module { return &Module{} }

// NewModuleInstance implements modules.Module.
func (*Module) NewModuleInstance(vu modules.VU) modules.Instance {
	return &instance{rt: vu.Runtime()}
}

type instance struct{ rt *sobek.Runtime }

var algorithms = map[string]func() hash.Hash{
	"md4": md4.New, "md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384,
	"sha512": sha512.New, "sha512_224": sha512.New512_224, "sha512_256": sha512.New512_256, "ripemd160": ripemd160.New,
}

// Exports implements modules.Instance.
func (in *instance) Exports() modules.Exports {
	named := map[string]any{
		"createHash":  in.createHash,
		"createHMAC":  in.createHMAC,
		"hmac":        in.hmac,
		"randomBytes": in.randomBytes,
	}
	for name := range algorithms {
		named[name] = func(input, enc sobek.Value) sobek.Value {
			h := in.newHash(name)
			in.write(h, name, input)
			return in.encode(name, h.Sum(nil), enc)
		}
	}
	return modules.Exports{Named: named}
}

func (in *instance) newHash(name string) hash.Hash {
	f, ok := algorithms[name]
	if !ok {
		panic(in.rt.NewTypeError("k6/crypto: unknown hash algorithm %q; use md4, md5, sha1, sha256, sha384, sha512, sha512_224, sha512_256 or ripemd160", name))
	}
	return f()
}

func (in *instance) write(h hash.Hash, what string, input sobek.Value) {
	b, ok := k6encoding.Bytes(input)
	if !ok {
		panic(in.rt.NewTypeError("%s: the input must be a string or an ArrayBuffer", what))
	}
	h.Write(b)
}

// encode returns a digest as k6 does: hex (default), base64, base64url,
// base64rawurl, or binary (an ArrayBuffer).
func (in *instance) encode(what string, sum []byte, enc sobek.Value) sobek.Value {
	e := "hex"
	if enc != nil && !sobek.IsUndefined(enc) && !sobek.IsNull(enc) {
		e = enc.String()
	}
	switch e {
	case "hex":
		return in.rt.ToValue(hex.EncodeToString(sum))
	case "base64":
		return in.rt.ToValue(base64.StdEncoding.EncodeToString(sum))
	case "base64url":
		return in.rt.ToValue(base64.URLEncoding.EncodeToString(sum))
	case "base64rawurl":
		return in.rt.ToValue(base64.RawURLEncoding.EncodeToString(sum))
	case "binary":
		return in.rt.ToValue(in.rt.NewArrayBuffer(sum))
	}
	panic(in.rt.NewTypeError("%s: output encoding %q is not one of hex, base64, base64url, base64rawurl, binary", what, e))
}

func (in *instance) hmac(alg string, secret, data, enc sobek.Value) sobek.Value {
	h := in.newHMAC(alg, secret)
	in.write(h, "hmac", data)
	return in.encode("hmac", h.Sum(nil), enc)
}

func (in *instance) newHMAC(alg string, secret sobek.Value) hash.Hash {
	f, ok := algorithms[alg]
	if !ok {
		in.newHash(alg) // throws the error naming the algorithms
	}
	key, ok := k6encoding.Bytes(secret)
	if !ok {
		panic(in.rt.NewTypeError("hmac: the secret must be a string or an ArrayBuffer"))
	}
	return hmac.New(f, key)
}

func (in *instance) hasher(h hash.Hash, what string) *sobek.Object {
	o := in.rt.NewObject()
	_ = o.Set("update", func(data sobek.Value) sobek.Value {
		in.write(h, what+".update", data)
		return o
	})
	_ = o.Set("digest", func(enc sobek.Value) sobek.Value { return in.encode(what+".digest", h.Sum(nil), enc) })
	return o
}

func (in *instance) createHash(alg string) *sobek.Object {
	return in.hasher(in.newHash(alg), "createHash("+alg+")")
}

func (in *instance) createHMAC(alg string, secret sobek.Value) *sobek.Object {
	return in.hasher(in.newHMAC(alg, secret), "createHMAC("+alg+")")
}

func (in *instance) randomBytes(n int64) sobek.Value {
	if n < 1 {
		panic(in.rt.NewTypeError("randomBytes: the size must be a positive integer, got %d", n))
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(in.rt.NewGoError(fmt.Errorf("randomBytes: %w", err)))
	}
	return in.rt.ToValue(in.rt.NewArrayBuffer(b))
}
