#include "p2psip/crypto/credentials.hpp"

#include <botan/x509cert.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "botan_glue.hpp"

namespace p2psip::crypto {

namespace pr = p2psip::protocol;

namespace {

protocol::error_record fail(crypto_errc code, const std::filesystem::path& file,
                            const std::string& what) {
  return protocol::error_record{make_error_code(code), file.string() + ": " + what};
}

protocol::error_record fail(const std::error_code& code, const std::filesystem::path& file,
                            const std::string& what) {
  return protocol::error_record{code, file.string() + ": " + what + ": " + code.message()};
}

std::optional<std::string> read_file(const std::filesystem::path& path, std::string& why) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = errno != 0 ? std::strerror(errno) : "cannot open";
    return std::nullopt;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    why = "read error";
    return std::nullopt;
  }
  return text;
}

bool same_ids(const certificate& a, const certificate& b) {
  auto x = a.node_ids();
  auto y = b.node_ids();
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

bool tls_capable(key_type k) {
  return k == key_type::ecdsa_p256 || k == key_type::ecdsa_p384 || k == key_type::ecdsa_p521 ||
         k == key_type::rsa;
}

result<void> write_file(const std::filesystem::path& path, const std::string& text, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return std::error_code(errno, std::generic_category());
  // A key file that existed before keeps its old mode through O_CREAT: set it.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    const int e = errno;
    ::close(fd);
    return std::error_code(e, std::generic_category());
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return std::error_code(e, std::generic_category());
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return std::error_code(errno, std::generic_category());
  return {};
}

/// make_credentials, with Botan's parse of the signing certificate when the caller has one (the
/// compact signing certificate of load_credentials is then not parsed again for the chain).
result<credentials> bundle(node_identity link, node_identity signing, trust_store* trust,
                           time_point now, const Botan::X509_Certificate* signing_parsed) {
  if (!tls_capable(link.key())) return make_error_code(crypto_errc::unusable_link_key);
  if (!same_ids(link.cert(), signing.cert()) || link.cert().user() != signing.cert().user()) {
    return make_error_code(crypto_errc::credentials_mismatch);
  }
  if (trust != nullptr) {
    for (const node_identity* id : {&link, &signing}) {
      std::vector<pr::generic_certificate> chain;
      for (const auto& der : id->chain()) chain.push_back({0, der});
      auto r = id == &signing && signing_parsed != nullptr
                   ? trust->check(id->cert(), *signing_parsed, chain, now)
                   : trust->check(id->cert(), chain, now);
      if (!r) return r.error();
    }
  }
  return credentials{std::move(link), std::move(signing)};
}

}  // namespace

result<credentials> make_credentials(node_identity link, node_identity signing, trust_store* trust,
                                     time_point now) {
  return bundle(std::move(link), std::move(signing), trust, now, nullptr);
}

result<credentials, protocol::error_record> load_credentials(const std::filesystem::path& cert_file,
                                                             const std::filesystem::path& key_file,
                                                             const overlay_params& overlay,
                                                             trust_store* trust, time_point now) {
  try {
    std::string why;
    const auto cert_text = read_file(cert_file, why);
    if (!cert_text) return fail(crypto_errc::file_unreadable, cert_file, "cannot read: " + why);
    const auto key_text = read_file(key_file, why);
    if (!key_text) return fail(crypto_errc::file_unreadable, key_file, "cannot read: " + why);

    const auto cert_blocks = detail::pem_blocks(*cert_text);
    if (!cert_blocks) return fail(crypto_errc::bad_pem, cert_file, "malformed PEM");
    const auto key_blocks = detail::pem_blocks(*key_text);
    if (!key_blocks) return fail(crypto_errc::bad_pem, key_file, "malformed PEM");

    // Each block is parsed by Botan once. The link certificate (the first node certificate)
    // keeps Botan's form, which TLS presents (tls_credentials shares it); the signing
    // certificate, when it is another one, keeps the compact form: after loading only its DER,
    // Node-IDs and key serve (the signer sends the DER and signs with the private key). A node
    // certificate listed again is the same certificate, not a second one.
    std::vector<certificate> nodes;
    std::optional<Botan::X509_Certificate> signing_parsed;  // for the chain check, then dropped
    std::vector<pr::bytes> intermediates;
    int index = 0;
    for (const auto& b : *cert_blocks) {
      if (b.label != "CERTIFICATE") continue;
      ++index;
      std::optional<Botan::X509_Certificate> parsed;
      try {
        parsed.emplace(b.der.data(), b.der.size());
      } catch (const std::exception&) {
        return fail(crypto_errc::malformed_certificate, cert_file,
                    "certificate " + std::to_string(index) + " is not a valid X.509 certificate");
      }
      if (parsed->is_CA_cert()) {
        intermediates.push_back(b.der);
        continue;
      }
      if (!nodes.empty() && nodes.front().der() == b.der) continue;
      const bool compact = !nodes.empty();
      auto cert = certificate::from_parsed(b.der, *parsed, overlay, compact);
      if (!cert) {
        return fail(cert.error(), cert_file,
                    "certificate " + std::to_string(index) + " (overlay " + overlay.name + ")");
      }
      nodes.push_back(std::move(*cert));
      if (compact) signing_parsed = std::move(parsed);
    }
    if (nodes.empty()) {
      return fail(crypto_errc::no_certificate_in_file, cert_file,
                  "no node certificate (CERTIFICATE block that is not a CA)");
    }
    if (nodes.size() > 2) {
      return fail(crypto_errc::credentials_mismatch, cert_file,
                  std::to_string(nodes.size()) +
                      " node certificates; expected the link certificate and at most one "
                      "signing certificate");
    }

    std::vector<const pr::bytes*> keys;
    for (const auto& b : *key_blocks) {
      if (b.label == "PRIVATE KEY") {
        // A key listed again is the same key (as a certificate listed again is one certificate).
        const auto same = [&b](const pr::bytes* k) { return *k == b.der; };
        if (std::none_of(keys.begin(), keys.end(), same)) keys.push_back(&b.der);
      } else if (b.label == "ENCRYPTED PRIVATE KEY") {
        return fail(crypto_errc::bad_private_key, key_file,
                    "encrypted keys are not supported; store the key unencrypted (mode 0600)");
      } else if (b.label.ends_with("PRIVATE KEY")) {
        return fail(
            crypto_errc::bad_private_key, key_file,
            "\"" + b.label + "\" is not PKCS#8; convert it with: openssl pkcs8 -topk8 -nocrypt");
      }
    }
    if (keys.empty()) return fail(crypto_errc::no_key_in_file, key_file, "no PRIVATE KEY block");

    std::vector<bool> used(keys.size(), false);
    std::vector<node_identity> identities;
    for (std::size_t c = 0; c < nodes.size(); ++c) {
      std::optional<node_identity> found;
      std::error_code last = make_error_code(crypto_errc::key_mismatch);
      for (std::size_t k = 0; k < keys.size() && !found; ++k) {
        if (used[k]) continue;
        auto id = node_identity::create(nodes[c], *keys[k], intermediates);
        if (id) {
          found = std::move(*id);
          used[k] = true;
        } else if (id.error() != crypto_errc::key_mismatch) {
          last = id.error();
        }
      }
      if (!found) {
        return fail(last, key_file,
                    "no private key for " + std::string(c == 0 ? "link" : "signing") +
                        " certificate (" + key_type_name(nodes[c].key()).data() + ", Node-ID " +
                        nodes[c].node_ids().front().hex() + ") of " + cert_file.string());
      }
      identities.push_back(std::move(*found));
    }
    for (std::size_t k = 0; k < keys.size(); ++k) {
      if (!used[k]) {
        return fail(crypto_errc::key_mismatch, key_file,
                    "private key " + std::to_string(k + 1) + " belongs to no certificate of " +
                        cert_file.string());
      }
    }

    node_identity link = identities.front();
    node_identity signing = identities.back();
    auto loaded = bundle(link, signing, trust, now, signing_parsed ? &*signing_parsed : nullptr);
    if (!loaded) {
      const std::error_code ec = loaded.error();
      if (ec == crypto_errc::unusable_link_key) {
        return fail(ec, cert_file,
                    "the first certificate is the link (TLS) certificate and needs an ECDSA or "
                    "RSA key, not " +
                        std::string(key_type_name(link.key())));
      }
      if (ec == crypto_errc::credentials_mismatch) {
        return fail(ec, cert_file,
                    "link and signing certificates must carry the same Node-IDs and user name");
      }
      return fail(ec, cert_file, "certificate chain");
    }
    return std::move(*loaded);
  } catch (const std::exception& e) {
    return fail(crypto_errc::malformed_certificate, cert_file, e.what());
  }
}

credentials_pem encode_credentials(const credentials& c) {
  credentials_pem out;
  out.certificates = detail::pem_encode(c.link.cert().der(), "CERTIFICATE");
  out.keys = c.link.private_key_pem();
  const bool separate = !(c.signing.cert() == c.link.cert());
  if (separate) {
    out.certificates += detail::pem_encode(c.signing.cert().der(), "CERTIFICATE");
    out.keys += c.signing.private_key_pem();
  }
  std::vector<pr::bytes> written;
  for (const node_identity* id : {&c.link, &c.signing}) {
    for (const pr::bytes& der : id->chain()) {
      if (std::find(written.begin(), written.end(), der) != written.end()) continue;
      out.certificates += detail::pem_encode(der, "CERTIFICATE");
      written.push_back(der);
    }
  }
  return out;
}

result<void, protocol::error_record> save_credentials(const credentials& c,
                                                      const std::filesystem::path& cert_file,
                                                      const std::filesystem::path& key_file) {
  const credentials_pem pem = encode_credentials(c);
  if (auto r = write_file(cert_file, pem.certificates, 0644); !r) {
    return fail(r.error(), cert_file, "cannot write");
  }
  if (auto r = write_file(key_file, pem.keys, 0600); !r) {
    return fail(r.error(), key_file, "cannot write");
  }
  return {};
}

}  // namespace p2psip::crypto
