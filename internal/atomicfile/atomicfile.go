// Package atomicfile writes files so that a crash leaves either the old
// content or the new, never a part of it: data goes to a temporary file in
// the same directory, is synced, and is then moved into place.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Create creates path with data and perm, atomically and without ever
// replacing an existing file: it writes a temporary file in the same
// directory and hard-links it into place (link fails if path exists). Where
// hard links are not supported it falls back to an exclusive create.
func Create(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, filepath.Base(path), data, perm)
	if err != nil {
		return err
	}
	linkErr := os.Link(tmp, path)
	os.Remove(tmp)
	switch {
	case linkErr == nil:
		syncDir(dir)
		return nil
	case errors.Is(linkErr, fs.ErrExist):
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	// No hard links here (some network or FUSE file systems): create
	// exclusively and remove the file again if writing it fails.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	if err != nil {
		return err
	}
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(path)
		return err
	}
	syncDir(dir)
	return nil
}

// Replace writes path atomically, replacing any existing file.
func Replace(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, filepath.Base(path), data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(dir)
	return nil
}

// writeTemp writes data to a new temporary file in dir and returns its name.
func writeTemp(dir, base string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// writeSyncClose writes data, syncs it to disk and closes f, returning the
// first error; f is closed in every case.
func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir flushes a directory entry change to disk, where that is possible.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
