package js

import (
	"context"
	"strings"
	"testing"
)

// runAsserting runs one iteration of a script whose assert() throws, and
// fails the test with the console when an assertion failed.
func runAsserting(t *testing.T, files map[string]string) *env {
	t.Helper()
	files["assert.js"] = `export function eq(got, want, what) {
		if (JSON.stringify(got) !== JSON.stringify(want)) { throw new Error(what + ": got " + JSON.stringify(got) + ", want " + JSON.stringify(want)); }
	}`
	e := load(t, writeScript(t, files, "main.js"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := e.activate(t, ctx, 1, "")
	if err := a.RunOnce(); err != nil {
		t.Fatal(err)
	}
	if c := e.console.String(); strings.Contains(c, "level=error") {
		t.Fatalf("the script failed:\n%s", c)
	}
	return e
}

func TestEncodingBase64Variants(t *testing.T) {
	t.Parallel()
	runAsserting(t, map[string]string{"main.js": `
		import encoding from 'k6/encoding';
		import { b64decode } from 'k6/encoding';
		import { eq } from './assert.js';
		export default function () {
			eq(encoding.b64encode('hello?>'), 'aGVsbG8/Pg==', 'std');
			eq(encoding.b64encode('hello?>', 'rawstd'), 'aGVsbG8/Pg', 'rawstd');
			eq(encoding.b64encode('hello?>', 'url'), 'aGVsbG8_Pg==', 'url');
			eq(encoding.b64encode('hello?>', 'rawurl'), 'aGVsbG8_Pg', 'rawurl');
			eq(b64decode('aGVsbG8_Pg', 'rawurl', 's'), 'hello?>', 'decode string');
			const ab = b64decode('AAEC');
			eq(ab instanceof ArrayBuffer, true, 'decode gives an ArrayBuffer');
			eq(Array.from(new Uint8Array(ab)), [0, 1, 2], 'decoded bytes');
			eq(encoding.b64encode(new Uint8Array([0, 1, 2]).buffer), 'AAEC', 'encode an ArrayBuffer');
			let threw = false;
			try { encoding.b64encode('x', 'base32'); } catch (e) { threw = String(e).includes('base32'); }
			eq(threw, true, 'unknown encoding named in the error');
		}`})
}

func TestCryptoHashesHMACAndRandomBytes(t *testing.T) {
	t.Parallel()
	runAsserting(t, map[string]string{"main.js": `
		import crypto from 'k6/crypto';
		import { eq } from './assert.js';
		export default function () {
			eq(crypto.md5('abc', 'hex'), '900150983cd24fb0d6963f7d28e17f72', 'md5');
			eq(crypto.sha1('abc', 'hex'), 'a9993e364706816aba3e25717850c26c9cd0d89d', 'sha1');
			eq(crypto.sha256('abc', 'hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'sha256');
			eq(crypto.sha256('abc', 'base64'), 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=', 'sha256 base64');
			eq(crypto.hmac('sha256', 'key', 'The quick brown fox jumps over the lazy dog', 'hex'),
				'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8', 'hmac sha256');
			const h = crypto.createHash('sha256');
			h.update('a'); h.update('bc');
			eq(h.digest('hex'), crypto.sha256('abc', 'hex'), 'createHash in parts');
			const m = crypto.createHMAC('sha256', 'key');
			m.update('The quick brown fox jumps over the lazy dog');
			eq(m.digest('hex'), 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8', 'createHMAC');
			const rb = crypto.randomBytes(16);
			eq(rb.byteLength, 16, 'randomBytes size');
			eq(crypto.md5('abc', 'binary').byteLength, 16, 'binary digest');
		}`})
}

func TestSharedArrayIsBuiltOnceAndReadOnly(t *testing.T) {
	t.Parallel()
	e := runAsserting(t, map[string]string{"main.js": `
		import { SharedArray } from 'k6/data';
		import { eq } from './assert.js';
		const data = new SharedArray('users', function () {
			console.log('building');
			return [{ name: 'a', tags: ['x'] }, { name: 'b', tags: [] }];
		});
		export default function () {
			eq(data.length, 2, 'length');
			eq(data[1].name, 'b', 'element');
			eq(data.map((u) => u.name), ['a', 'b'], 'map');
			let threw = false;
			try { data[0] = 1; } catch (e) { threw = String(e).includes('read-only'); }
			eq(threw, true, 'assignment throws');
			const u = data[0];
			try { u.name = 'changed'; } catch (e) {}
			eq(data[0].name, 'a', 'elements are frozen copies');
		}`})
	// VU 0 built it; VU 1 re-ran the init code and reused it.
	if n := strings.Count(e.console.String(), "building"); n != 1 {
		t.Fatalf("the SharedArray function ran %d times, want 1:\n%s", n, e.console)
	}
}
