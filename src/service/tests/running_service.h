// A Service started on a free port with an HTTP client to its API, for the
// service tests that drive serve end to end (unit and integration).
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <string>

#include "hashsieve/service/service.h"

namespace hashsieve::service::testing {

struct RunningService {
  std::unique_ptr<Service> svc;
  std::unique_ptr<httplib::Client> client;

  void start(ServiceConfig config) {
    auto s = Service::create(std::move(config));
    ASSERT_TRUE(s.ok()) << s.error().message();
    svc = std::move(s).value();
    auto st = svc->start();
    ASSERT_TRUE(st.ok()) << st.error().message();
    client = std::make_unique<httplib::Client>("127.0.0.1", svc->port());
    client->set_read_timeout(10, 0);
  }
  // GET with `Authorization: Bearer <token>`, or without the header when
  // token is empty.
  httplib::Result get(const std::string& path, const std::string& token) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client->Get(path.c_str(), h);
  }
};

}  // namespace hashsieve::service::testing
