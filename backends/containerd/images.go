package containerd

import (
	"context"
	"fmt"
	"io"
	"slices"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/platforms"
)

// LoadImages imports the images of an OCI image layout or `docker save`
// archive into containerd's store, unpacks them for the runtime's
// snapshotter, and returns their names, sorted. An image already there is
// replaced by the archive's.
func (r *Runtime) LoadImages(ctx context.Context, archiveReader io.Reader) ([]string, error) {
	ctx = r.withNamespace(ctx)
	imgs, err := r.client.Import(ctx, archiveReader, containerd.WithImportPlatform(platforms.Default()))
	if err != nil {
		return nil, fmt.Errorf("load images: %w (is it an OCI image layout or a `docker save` tar archive?)", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("load images: the archive names no image: save it with a name (docker save NAME:TAG), or annotate its OCI index with io.containerd.image.name")
	}
	var names []string
	for _, i := range imgs {
		img := containerd.NewImageWithPlatform(r.client, i, platforms.Default())
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("load images: unpack %s: %w", i.Name, err)
		}
		names = append(names, i.Name)
	}
	slices.Sort(names)
	return names, nil
}

// withNamespace puts the runtime's namespace on a caller's context.
func (r *Runtime) withNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}
