// Package testimage builds a small container image without a registry: an
// OCI image layout archive (the format `warren image load` and `ctr images
// import` take) holding a static busybox, its applets as links in /bin,
// /etc/passwd and /etc/group with a non-root user, and a default command
// that runs until SIGTERM. The integration specs, bench/ and the README's
// demo run it; ci/testimage writes it to a file.
//
// The archive is the same bytes for the same busybox: every timestamp is
// fixed, so an image loaded twice has one digest.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"
)

// DefaultName is the reference the archive names its image with.
const DefaultName = "docker.io/warren/busybox:test"

// DefaultBusybox is where Debian's busybox-static package puts the binary.
const DefaultBusybox = "/bin/busybox"

// User is the non-root user the image's /etc/passwd defines, with its IDs.
const (
	User = "app"
	UID  = 1000
	GID  = 1000
)

// Cmd is the image's default command: a shell that waits until SIGTERM and
// then exits 0 at once (a shell as PID 1 would otherwise ignore SIGTERM).
var Cmd = []string{"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"}

// mtime is every file's and the image's creation time.
var mtime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options say what to build.
type Options struct {
	// Name is the image reference (DefaultName when empty).
	Name string
	// Busybox is the path of a statically linked busybox (DefaultBusybox
	// when empty).
	Busybox string
	// Files are extra regular files, by absolute path in the image, mode
	// 0644; their directories are made.
	Files map[string]string
}

// Write writes the image as an OCI image layout tar archive to w.
func Write(w io.Writer, o Options) error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	layer, err := rootfs(o)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(layer); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}

	config, err := json.Marshal(map[string]any{
		"created":      mtime.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd":        Cmd,
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}},
		"history": []map[string]any{{"created": mtime.Format(time.RFC3339),
			"created_by": "warren testimage: busybox-static"}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor("application/vnd.oci.image.config.v1+json", config, nil),
		"layers":        []any{descriptor("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes(), nil)},
	})
	if err != nil {
		return err
	}
	tag := o.Name[strings.LastIndex(o.Name, ":")+1:]
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{descriptor("application/vnd.oci.image.manifest.v1+json", manifest, map[string]string{
			// containerd's import names the image after this annotation.
			"io.containerd.image.name":          o.Name,
			"org.opencontainers.image.ref.name": tag,
		})},
	})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(config), config},
		{blobPath(manifest), manifest},
		{blobPath(gz.Bytes()), gz.Bytes()},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteFile writes the image archive to a new file at p.
func WriteFile(p string, o Options) (err error) {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	return Write(f, o)
}

// rootfs is the image's only layer, uncompressed.
func rootfs(o Options) ([]byte, error) {
	bin, err := os.ReadFile(o.Busybox)
	if err != nil {
		return nil, fmt.Errorf("testimage: read busybox: %w (install Debian's busybox-static)", err)
	}
	out, err := exec.Command(o.Busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("testimage: %s --list: %w", o.Busybox, err)
	}
	applets := strings.Fields(string(out))
	slices.Sort(applets)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdir := func(dir string, mode int64) error {
		if dirs[dir] {
			return nil
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode, ModTime: mtime})
	}
	for _, d := range []string{"bin", "etc", "root", "home", "home/" + User, "run", "var", "var/www"} {
		if err := mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := mkdir("tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := writeFile(tw, "bin/busybox", 0o755, bin); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox",
			Mode: 0o777, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:%s:/home/%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		User, UID, GID, User, User)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\nnogroup:x:65534:\n", User, GID)
	files := map[string]string{"/etc/passwd": passwd, "/etc/group": group,
		"/var/www/index.html": "warren test image\n"}
	for p, s := range o.Files {
		files[p] = s
	}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("testimage: file %q: use an absolute path", p)
		}
		rel := strings.TrimPrefix(path.Clean(p), "/")
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			if err := mkdir(strings.Join(parts[:i], "/"), 0o755); err != nil {
				return nil, err
			}
		}
		if err := writeFile(tw, rel, 0o644, []byte(files[p])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(b []byte) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:")
}

func descriptor(mediaType string, b []byte, annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
	if annotations != nil {
		d["annotations"] = annotations
	}
	return d
}
