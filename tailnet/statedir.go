package tailnet

import (
	"fmt"
	"os"
	"sync"
)

// The process's tailnet state lives in one temporary directory, with a
// subdirectory per node (Config.Dir empty): a node removes its own on Close,
// and RemoveStateDirs removes whatever an exit path left behind.
var (
	stateRootMu  sync.Mutex
	stateRootDir string
)

// stateRoot returns the process's state directory, creating it on first use
// (again after RemoveStateDirs).
func stateRoot() (string, error) {
	stateRootMu.Lock()
	defer stateRootMu.Unlock()
	if stateRootDir == "" {
		dir, err := os.MkdirTemp("", fmt.Sprintf("cdeload-tailnet-%d-", os.Getpid()))
		if err != nil {
			return "", err
		}
		stateRootDir = dir
	}
	return stateRootDir, nil
}

// RemoveStateDirs removes the state directories of every node of this
// process that used the default location (Config.Dir empty), closed or not.
// Call it on every exit path of a program (normal end, error, signal);
// nodes still running lose their state, so call it last.
func RemoveStateDirs() error {
	stateRootMu.Lock()
	dir := stateRootDir
	stateRootDir = ""
	stateRootMu.Unlock()
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("tailnet: remove state directories: %w", err)
	}
	return nil
}
