package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

// maxBody bounds a PATCH body.
const maxBody = 1 << 20

// statusDoc is the JSON:API document of /v1/status.
type statusDoc struct {
	Data statusData `json:"data"`
}

type statusData struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes Status `json:"attributes"`
}

// patchDoc is a PATCH /v1/status body; absent attributes are nil.
type patchDoc struct {
	Data *struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		Attributes struct {
			Paused  *bool            `json:"paused"`
			Stopped *bool            `json:"stopped"`
			VUs     *json.RawMessage `json:"vus"`
			VUsMax  *json.RawMessage `json:"vus-max"`
		} `json:"attributes"`
	} `json:"data"`
}

// apiError is one JSON:API error object.
type apiError struct {
	Status string `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// Handler returns the API's routes for c.
func Handler(c *Control) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeStatus(w, c)
		case http.MethodPatch:
			patchStatus(w, r, c)
		default:
			w.Header().Set("Allow", "GET, HEAD, PATCH")
			writeError(w, http.StatusMethodNotAllowed, "Method not allowed",
				fmt.Sprintf("%s is not allowed on /v1/status; use GET or PATCH", r.Method))
		}
	})
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not found",
			fmt.Sprintf("%s is not served; cdeload serves GET/PATCH /v1/status and GET /ping", r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

func writeStatus(w http.ResponseWriter, c *Control) {
	writeJSON(w, http.StatusOK, statusDoc{Data: statusData{Type: "status", ID: "default", Attributes: c.Status()}})
}

func writeError(w http.ResponseWriter, code int, title, detail string) {
	writeJSON(w, code, map[string][]apiError{"errors": {{Status: strconv.Itoa(code), Title: title, Detail: detail}}})
}

func patchStatus(w http.ResponseWriter, r *http.Request, c *Control) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid data", fmt.Sprintf("reading the request body: %v", err))
		return
	}
	if len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "Invalid data", fmt.Sprintf("the request body is larger than %d bytes", maxBody))
		return
	}
	var doc patchDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid data", fmt.Sprintf("the body is not a JSON:API status document: %v", err))
		return
	}
	if doc.Data == nil {
		writeError(w, http.StatusBadRequest, "Invalid data", `the body has no "data" object; send {"data":{"type":"status","id":"default","attributes":{...}}}`)
		return
	}
	if doc.Data.Type != "" && doc.Data.Type != "status" {
		writeError(w, http.StatusBadRequest, "Invalid data", fmt.Sprintf("data.type is %q; only \"status\" is accepted", doc.Data.Type))
		return
	}
	a := doc.Data.Attributes
	if a.VUs != nil || a.VUsMax != nil {
		writeError(w, http.StatusInternalServerError, "Couldn't update the status", ErrLiveVUs.Error())
		return
	}
	if a.Stopped != nil && *a.Stopped {
		c.Stop()
	}
	if a.Paused != nil {
		if *a.Paused {
			if err := c.Pause(); err != nil {
				writeError(w, http.StatusInternalServerError, "Couldn't update the status", err.Error())
				return
			}
		} else {
			c.Resume()
		}
	}
	writeStatus(w, c)
}

// Server is the API's HTTP server.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Listen binds addr (HOST:PORT) and serves the API for c in the
// background until Close. A bind failure carries exit code 106.
func Listen(addr string, c *Control, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, lib.Errorf(lib.ExitCannotStartAPI, "cannot start the REST API server on %s: %w", addr, err)
	}
	s := &Server{ln: ln, done: make(chan struct{}),
		srv: &http.Server{Handler: Handler(c), ReadHeaderTimeout: 10 * time.Second}}
	if log != nil {
		s.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("REST API server stopped", "error", err)
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, letting requests in flight finish until ctx
// ends.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("stopping the REST API server: %w", err)
	}
	return nil
}
