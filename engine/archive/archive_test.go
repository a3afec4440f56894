package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func sample() *Archive {
	return &Archive{
		Type: "js", Options: json.RawMessage(`{"vus":2}`), Filename: "/home/u/test/main.js", Pwd: "/home/u",
		Env: map[string]string{"A": "1"}, CompatibilityMode: "extended", K6Version: "v0.1.0", Goos: "linux",
		Data: []byte("export default function () {}\n"),
		Files: map[string][]byte{
			"/home/u/test/main.js":   []byte("export default function () {}\n"),
			"/home/u/test/lib.js":    []byte("export const x = 1;\n"),
			"/home/u/data/users.csv": []byte("a,b\n"),
		},
	}
}

func members(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var buf bytes.Buffer
		buf.ReadFrom(tr)
		out[h.Name] = buf.Bytes()
	}
	return out
}

func TestWriteLayoutAndRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	if !Sniff(buf.Bytes()) {
		t.Fatal("Sniff does not recognise a written archive")
	}
	m := members(t, buf.Bytes())
	for _, n := range []string{"metadata.json", "data", "file/home/u/test/main.js", "file/home/u/test/lib.js", "file/home/u/data/users.csv"} {
		if _, ok := m[n]; !ok {
			t.Fatalf("no member %s in %v", n, m)
		}
	}
	var md map[string]any
	if err := json.Unmarshal(m["metadata.json"], &md); err != nil {
		t.Fatal(err)
	}
	if md["filename"] != "file:///home/u/test/main.js" || md["pwd"] != "file:///home/u/" || md["type"] != "js" ||
		md["compatibilityMode"] != "extended" || md["k6version"] != "v0.1.0" || md["goos"] != "linux" {
		t.Fatalf("metadata.json: %s", m["metadata.json"])
	}
	a, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	var opts bytes.Buffer
	json.Compact(&opts, a.Options)
	if a.Filename != want.Filename || a.Pwd != want.Pwd || a.Env["A"] != "1" || opts.String() != `{"vus":2}` ||
		string(a.Data) != string(want.Data) || len(a.Files) != 3 || string(a.Files["/home/u/data/users.csv"]) != "a,b\n" {
		t.Fatalf("round trip: %+v", a)
	}
	// The same test gives the same bytes.
	var again bytes.Buffer
	if err := Write(&again, sample()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("two writes of the same archive differ")
	}
}

// k6 archives made by older versions hold plain paths and may omit data.
func TestReadPlainPathsAndEntryFromFiles(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name, body string) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	add("metadata.json", `{"type":"js","filename":"/srv/t.js","pwd":"/srv","options":{}}`)
	add("file/srv/t.js", "export default function () {}")
	add("https/jslib.example/x.js", "export {}")
	tw.Close()
	a, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if a.Filename != filepath.FromSlash("/srv/t.js") || string(a.Data) != "export default function () {}" || a.Env == nil {
		t.Fatalf("got %+v", a)
	}
	if _, ok := a.Files["https://jslib.example/x.js"]; !ok {
		t.Fatalf("remote module not kept: %v", a.Files)
	}
}

func TestReadErrors(t *testing.T) {
	write := func(entries ...string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for i := 0; i < len(entries); i += 2 {
			tw.WriteHeader(&tar.Header{Name: entries[i], Mode: 0o644, Size: int64(len(entries[i+1])), Typeflag: tar.TypeReg})
			tw.Write([]byte(entries[i+1]))
		}
		tw.Close()
		return buf.Bytes()
	}
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"not a tar":     {[]byte("export default function () {}"), "reading the tar"},
		"no metadata":   {write("data", "x"), "no metadata.json"},
		"bad metadata":  {write("metadata.json", "{"), "metadata.json"},
		"other type":    {write("metadata.json", `{"type":"zip","filename":"/a.js"}`, "data", "x"), `type "zip"`},
		"relative name": {write("metadata.json", `{"type":"js","filename":"a.js"}`, "data", "x"), "not an absolute path"},
		"no entry":      {write("metadata.json", `{"type":"js","filename":"/a.js"}`), "entry script /a.js is missing"},
	}
	for name, c := range cases {
		_, err := Read(bytes.NewReader(c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestWriteRejectsRelativePaths(t *testing.T) {
	a := sample()
	a.Filename = "main.js"
	if err := Write(&bytes.Buffer{}, a); err == nil {
		t.Fatal("a relative entry path was accepted")
	}
	a = sample()
	a.Files["lib.js"] = nil
	if err := Write(&bytes.Buffer{}, a); err == nil {
		t.Fatal("a relative file path was accepted")
	}
}

func TestSniff(t *testing.T) {
	if Sniff([]byte("import http from 'k6/http';")) || Sniff(nil) {
		t.Fatal("a script sniffed as a tar")
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "archive.tar")
	if err := WriteFile(p, sample()); err != nil {
		t.Fatal(err)
	}
	a, err := ReadFile(p)
	if err != nil || a.Filename != "/home/u/test/main.js" {
		t.Fatalf("ReadFile: %v %+v", err, a)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Fatal("reading a missing file succeeded")
	}
}

func TestRemoteModulesRoundTrip(t *testing.T) {
	a := sample()
	a.Files["https://127.0.0.1:8443/lib/index.js"] = []byte("export const x = 1;")
	a.Files["http://127.0.0.1:8080/plain.js"] = []byte("module.exports = 2;")
	var buf bytes.Buffer
	if err := Write(&buf, a); err != nil {
		t.Fatal(err)
	}
	m := members(t, buf.Bytes())
	for _, n := range []string{"https/127.0.0.1:8443/lib/index.js", "http/127.0.0.1:8080/plain.js"} {
		if _, ok := m[n]; !ok {
			t.Fatalf("no member %s in %v", n, m)
		}
	}
	back, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Files["https://127.0.0.1:8443/lib/index.js"]) != "export const x = 1;" ||
		string(back.Files["http://127.0.0.1:8080/plain.js"]) != "module.exports = 2;" {
		t.Fatalf("remote modules after the round trip: %v", back.Files)
	}
}
