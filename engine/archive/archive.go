// Package archive reads and writes k6-style test archives: a tar file with
// metadata.json (type, options, filename, pwd, env, compatibilityMode,
// k6version, goos), the entry script as "data", and every file the script
// loaded during VU 0 under "file/<absolute path>", remote modules under
// "https/<host>/<path>" (or "http/…"). A test runs from an
// archive without touching the disk.
package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Archive is one test archive. Paths are absolute, in the operating
// system's form.
type Archive struct {
	// Type is the script type; "js" is the only one.
	Type string
	// Options are the consolidated options the archive was made with.
	Options json.RawMessage
	// Filename is the absolute path of the entry script; Pwd the working
	// directory the archive was made in.
	Filename, Pwd string
	// Env is __ENV as given with -e when the archive was made.
	Env map[string]string
	// CompatibilityMode, K6Version and Goos describe the maker.
	CompatibilityMode, K6Version, Goos string
	// Data is the entry script's text.
	Data []byte
	// Files are the modules and open()ed files, keyed by absolute path.
	Files map[string][]byte
}

// metadata is metadata.json; filename and pwd are file:// URLs as k6
// writes them.
type metadata struct {
	Type              string            `json:"type"`
	Options           json.RawMessage   `json:"options"`
	Filename          string            `json:"filename"`
	Pwd               string            `json:"pwd"`
	Env               map[string]string `json:"env"`
	CompatibilityMode string            `json:"compatibilityMode"`
	K6Version         string            `json:"k6version"`
	Goos              string            `json:"goos"`
}

// maxFileSize bounds one member of an archive when reading (256 MiB).
const maxFileSize = 256 << 20

// Sniff reports whether head (the first bytes of a file, at least 262 of
// them for a positive answer) is a tar file.
func Sniff(head []byte) bool {
	return len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar"))
}

// fileURL turns an absolute path into a file:// URL.
func fileURL(p string, dir bool) string {
	s := filepath.ToSlash(p)
	if !strings.HasPrefix(s, "/") {
		s = "/" + s
	}
	if dir && !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return (&url.URL{Scheme: "file", Path: s}).String()
}

// urlPath turns a file:// URL, or a plain absolute path as old archives
// hold, into a path.
func urlPath(s string) (string, error) {
	if !strings.HasPrefix(s, "file://") {
		return filepath.FromSlash(s), nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", s, err)
	}
	p := u.Path
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return filepath.FromSlash(p), nil
}

// memberName is the tar name of the file at absolute path p, or of the
// remote module at URL p ("https/<host>/<path>", as k6 stores them).
func memberName(p string) string {
	for _, scheme := range []string{"https", "http"} {
		if rest, ok := strings.CutPrefix(p, scheme+"://"); ok {
			return scheme + "/" + rest
		}
	}
	s := strings.ReplaceAll(filepath.ToSlash(p), ":", "")
	return "file/" + strings.TrimPrefix(s, "/")
}

func isRemote(p string) bool {
	return strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "http://")
}

// Write writes a as a tar to w. Members are sorted by name and carry a
// fixed modification time, so the same test gives the same bytes.
func Write(w io.Writer, a *Archive) error {
	if a.Filename == "" || !filepath.IsAbs(a.Filename) {
		return fmt.Errorf("archive: entry script path %q must be absolute", a.Filename)
	}
	md := metadata{
		Type: a.Type, Options: a.Options, Filename: fileURL(a.Filename, false), Pwd: fileURL(a.Pwd, true),
		Env: a.Env, CompatibilityMode: a.CompatibilityMode, K6Version: a.K6Version, Goos: a.Goos,
	}
	if md.Type == "" {
		md.Type = "js"
	}
	if len(md.Options) == 0 {
		md.Options = json.RawMessage("{}")
	}
	if md.Env == nil {
		md.Env = map[string]string{}
	}
	mdJSON, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: encoding metadata.json: %w", err)
	}
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0).UTC()
	add := func(name string, b []byte) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("archive: writing %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("archive: writing %s: %w", name, err)
		}
		return nil
	}
	if err := add("metadata.json", mdJSON); err != nil {
		return err
	}
	if err := add("data", a.Data); err != nil {
		return err
	}
	names := make([]string, 0, len(a.Files))
	byName := make(map[string][]byte, len(a.Files))
	for p, b := range a.Files {
		if !filepath.IsAbs(p) && !isRemote(p) {
			return fmt.Errorf("archive: file path %q must be absolute or an http(s) URL", p)
		}
		n := memberName(p)
		names = append(names, n)
		byName[n] = b
	}
	sort.Strings(names)
	for _, n := range names {
		if err := add(n, byName[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: finishing the tar: %w", err)
	}
	return nil
}

// WriteFile writes a to the file at p, replacing it only once the whole
// archive is written.
func WriteFile(p string, a *Archive) error {
	dir := filepath.Dir(p)
	tmp, err := os.CreateTemp(dir, ".archive-*.tar")
	if err != nil {
		return fmt.Errorf("archive: creating %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	if err := Write(tmp, a); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("archive: writing %s: %w", p, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("archive: writing %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("archive: writing %s: %w", p, err)
	}
	return nil
}

// Read reads an archive. The entry script must be present as "data" or
// under file/; members outside metadata.json, data, file/ and https/
// are ignored.
func Read(r io.Reader) (*Archive, error) {
	tr := tar.NewReader(r)
	a := &Archive{Files: map[string][]byte{}}
	var md *metadata
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("archive: reading the tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxFileSize {
			return nil, fmt.Errorf("archive: member %s is %d bytes, more than the %d allowed", h.Name, h.Size, maxFileSize)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxFileSize))
		if err != nil {
			return nil, fmt.Errorf("archive: reading member %s: %w", h.Name, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch {
		case name == "metadata.json":
			md = &metadata{}
			if err := json.Unmarshal(b, md); err != nil {
				return nil, fmt.Errorf("archive: metadata.json: %w", err)
			}
		case name == "data":
			a.Data = b
		case strings.HasPrefix(name, "file/"):
			p := strings.TrimPrefix(name, "file")
			if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				return nil, fmt.Errorf("archive: member name %q escapes its tree", h.Name)
			}
			a.Files[filepath.FromSlash(p)] = b
		case strings.HasPrefix(name, "https/"):
			a.Files["https://"+strings.TrimPrefix(name, "https/")] = b
		case strings.HasPrefix(name, "http/"):
			a.Files["http://"+strings.TrimPrefix(name, "http/")] = b
		}
	}
	if md == nil {
		return nil, errors.New("archive: no metadata.json; this is not a k6 archive")
	}
	if md.Type != "" && md.Type != "js" {
		return nil, fmt.Errorf("archive: metadata.json type %q is not supported; only \"js\" is", md.Type)
	}
	var err error
	if a.Filename, err = urlPath(md.Filename); err != nil {
		return nil, fmt.Errorf("archive: metadata.json filename: %w", err)
	}
	if a.Filename == "" || !filepath.IsAbs(a.Filename) {
		return nil, fmt.Errorf("archive: metadata.json filename %q is not an absolute path", md.Filename)
	}
	if a.Pwd, err = urlPath(md.Pwd); err != nil {
		return nil, fmt.Errorf("archive: metadata.json pwd: %w", err)
	}
	a.Type, a.Options, a.Env = "js", md.Options, md.Env
	a.CompatibilityMode, a.K6Version, a.Goos = md.CompatibilityMode, md.K6Version, md.Goos
	if a.Env == nil {
		a.Env = map[string]string{}
	}
	if a.Data == nil {
		a.Data = a.Files[a.Filename]
	}
	if a.Data == nil {
		return nil, fmt.Errorf("archive: the entry script %s is missing (no data member)", a.Filename)
	}
	a.Files[a.Filename] = a.Data
	return a, nil
}

// ReadFile reads the archive at p.
func ReadFile(p string) (*Archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return a, nil
}
