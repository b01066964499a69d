package containerd

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/platforms"
)

// Image is an image in the node's containerd store, as `warren image ls`
// shows it.
type Image struct {
	Name    string
	Digest  string
	Size    int64 // bytes of its content (compressed layers and config)
	Created time.Time
}

// ImageStore is containerd's image store in Warren's namespace, for the
// image commands a node runs without a cluster (`warren image load|ls`).
type ImageStore struct {
	client      *containerd.Client
	namespace   string
	snapshotter string
}

// OpenImages connects to the containerd at address (DefaultAddress when
// empty), in DefaultNamespace, unpacking with DefaultSnapshotter.
func OpenImages(address string) (*ImageStore, error) {
	address = cmp.Or(address, DefaultAddress)
	client, err := containerd.New(address, containerd.WithDefaultNamespace(DefaultNamespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w (is containerd running? point --containerd at its socket)", address, err)
	}
	return &ImageStore{client: client, namespace: DefaultNamespace, snapshotter: DefaultSnapshotter}, nil
}

// Close disconnects.
func (s *ImageStore) Close() error { return s.client.Close() }

// Images is the runtime's image store.
func (r *Runtime) Images() *ImageStore {
	return &ImageStore{client: r.client, namespace: r.cfg.Namespace, snapshotter: r.cfg.Snapshotter}
}

// Load imports the images of an OCI image layout or `docker save`
// archive, unpacks them for the runtime's snapshotter, and returns their
// names, sorted. An image already there is replaced by the archive's.
func (s *ImageStore) Load(ctx context.Context, archive io.Reader) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, s.namespace)
	imgs, err := s.client.Import(ctx, archive, containerd.WithImportPlatform(platforms.Default()))
	if err != nil {
		return nil, fmt.Errorf("load images: %w (is it an OCI image layout or a `docker save` tar archive?)", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("load images: the archive names no image: save it with a name (docker save NAME:TAG), or annotate its OCI index with io.containerd.image.name")
	}
	var names []string
	for _, i := range imgs {
		img := containerd.NewImageWithPlatform(s.client, i, platforms.Default())
		if err := img.Unpack(ctx, s.snapshotter); err != nil {
			return nil, fmt.Errorf("load images: unpack %s: %w", i.Name, err)
		}
		names = append(names, i.Name)
	}
	slices.Sort(names)
	return names, nil
}

// List returns the images in the store, by name.
func (s *ImageStore) List(ctx context.Context) ([]Image, error) {
	ctx = namespaces.WithNamespace(ctx, s.namespace)
	imgs, err := s.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(imgs))
	for _, i := range imgs {
		size, err := containerd.NewImageWithPlatform(s.client, i, platforms.Default()).Size(ctx)
		if err != nil {
			size = -1 // content missing for this platform
		}
		out = append(out, Image{Name: i.Name, Digest: i.Target.Digest.String(), Size: size, Created: i.CreatedAt})
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
