#include "registry_client.h"
#include "sources_internal.h"

namespace hashsieve::image {
namespace {

class RegistrySource final : public ImageSource {
 public:
  RegistrySource(std::unique_ptr<RegistryClient> client, ResolveRequest request, ArchiveLimits limits)
      : client_(std::move(client)), store_(*client_), request_(std::move(request)), limits_(limits) {}

  Result<std::vector<ResolvedImage>> resolve() override {
    if (auto st = client_->ping(); !st) return std::move(st).error();
    return image::resolve(store_, request_);
  }

  Result<std::unique_ptr<LayerEntries>> open_layer(const ResolvedImage& image, std::size_t index) override {
    if (index >= image.layers.size()) {
      return Error(ErrorCode::invalid_argument, "layer index " + std::to_string(index) + " out of range (" +
                                                    std::to_string(image.layers.size()) + " layers)");
    }
    const LayerDescriptor& layer = image.layers[index];
    auto blob = client_->open_blob(layer.digest);
    if (!blob) return std::move(blob).error();
    return open_tar_layer(std::move(*blob), LayerExpectations{layer.media_type, layer.digest, layer.diff_id, layer.size},
                          limits_);
  }

 private:
  std::unique_ptr<RegistryClient> client_;
  RegistryBlobStore store_;
  ResolveRequest request_;
  ArchiveLimits limits_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> open_registry_source(const std::string& text, const SourceOptions& options) {
  auto reference = ImageReference::parse(text);
  if (!reference) return std::move(reference).error();
  auto client = RegistryClient::create(*reference, options);
  if (!client) return std::move(client).error();
  ResolveRequest request{text, reference->repository, reference->manifest_reference(), options.platforms};
  return std::unique_ptr<ImageSource>(
      std::make_unique<RegistrySource>(std::move(*client), std::move(request), options.limits));
}

}  // namespace hashsieve::image
