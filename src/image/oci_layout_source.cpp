#include "oci_layout_store.h"
#include "sources_internal.h"

namespace hashsieve::image {
namespace {

class OciLayoutSource final : public ImageSource {
 public:
  OciLayoutSource(std::unique_ptr<OciLayoutStore> store, ResolveRequest request, ArchiveLimits limits)
      : store_(std::move(store)), request_(std::move(request)), limits_(limits) {}

  Result<std::vector<ResolvedImage>> resolve() override { return image::resolve(*store_, request_); }

  Result<std::unique_ptr<LayerEntries>> open_layer(const ResolvedImage& image, std::size_t index) override {
    if (index >= image.layers.size()) {
      return Error(ErrorCode::invalid_argument, "layer index " + std::to_string(index) + " out of range (" +
                                                    std::to_string(image.layers.size()) + " layers)");
    }
    const LayerDescriptor& layer = image.layers[index];
    Descriptor blob;
    blob.media_type = layer.media_type;
    blob.digest = layer.digest;
    blob.size = layer.size;
    auto source = store_->open_blob(blob);
    if (!source) return std::move(source).error().with_context("layer " + layer.digest);
    return open_tar_layer(std::move(*source), LayerExpectations{layer.media_type, layer.digest, layer.diff_id, layer.size},
                          limits_);
  }

 private:
  std::unique_ptr<OciLayoutStore> store_;
  ResolveRequest request_;
  ArchiveLimits limits_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> open_oci_layout_source(const std::string& location, const SourceOptions& options) {
  const OciLocation where = split_oci_location(location);
  auto store = OciLayoutStore::open(where.path);
  if (!store) return std::move(store).error();
  ResolveRequest request{"oci:" + location, "", where.tag, options.platforms};
  return std::unique_ptr<ImageSource>(std::make_unique<OciLayoutSource>(std::move(*store), std::move(request), options.limits));
}

}  // namespace hashsieve::image
