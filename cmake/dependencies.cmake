# Every dependency comes from a Debian 12 package through find_package or pkg-config.
# A missing one stops the configure step with the package to install.
find_package(PkgConfig REQUIRED)

function(p2psip_require_pkg target module debian_package)
  pkg_check_modules(${target} IMPORTED_TARGET ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "p2psip needs ${module}: apt-get install ${debian_package}")
  endif()
endfunction()

p2psip_require_pkg(BOTAN botan-2 libbotan-2-dev)
# Ed25519 for message and StoredData signatures: about twice Botan 2.19's sign and verify rates.
p2psip_require_pkg(SODIUM libsodium libsodium-dev)

p2psip_require_pkg(PUGIXML pugixml libpugixml-dev)
# sd_notify for p2psip-peer under systemd (Type=notify: READY=1 once joined, STATUS=, WATCHDOG=1).
p2psip_require_pkg(SYSTEMD libsystemd libsystemd-dev)

find_package(nlohmann_json 3 QUIET)
if(NOT nlohmann_json_FOUND)
  message(FATAL_ERROR "p2psip needs nlohmann-json: apt-get install nlohmann-json3-dev")
endif()

# The peer's admin HTTP server: metric families and the text format from prometheus-cpp, the
# HTTP server from civetweb (the one prometheus-cpp's pull library is built on).
find_package(prometheus-cpp CONFIG QUIET)
if(NOT prometheus-cpp_FOUND)
  message(FATAL_ERROR "p2psip needs prometheus-cpp: apt-get install prometheus-cpp-dev")
endif()
find_package(civetweb CONFIG QUIET)
if(NOT civetweb_FOUND)
  message(FATAL_ERROR "p2psip needs civetweb: apt-get install libcivetweb-dev")
endif()

find_package(cxxopts QUIET)
if(NOT cxxopts_FOUND)
  message(FATAL_ERROR "p2psip needs cxxopts: apt-get install libcxxopts-dev")
endif()

if(P2PSIP_TESTS)
  find_package(doctest QUIET)
  if(NOT doctest_FOUND)
    message(FATAL_ERROR "p2psip tests need doctest: apt-get install doctest-dev")
  endif()
endif()

if(P2PSIP_BENCH)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    message(FATAL_ERROR "p2psip benchmarks need Google Benchmark: apt-get install libbenchmark-dev (or -DP2PSIP_BENCH=OFF)")
  endif()
  # OpenDHT: p2psip-bench's baseline DHT (p2psip-opendht-node and -load), never linked into p2psip.
  pkg_check_modules(OPENDHT IMPORTED_TARGET opendht)
  if(NOT OPENDHT_FOUND)
    message(FATAL_ERROR "p2psip benchmarks need OpenDHT: apt-get install libopendht-dev (or -DP2PSIP_BENCH=OFF)")
  endif()
endif()

# Standalone Asio has no CMake config: an INTERFACE target with ASIO_STANDALONE.
find_path(ASIO_INCLUDE_DIR asio.hpp)
if(ASIO_INCLUDE_DIR)
  add_library(p2psip_asio INTERFACE)
  target_include_directories(p2psip_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
  # ASIO_HAS_STD_ALIGNED_ALLOC for every file alike: Asio decides it from _GLIBCXX_HAVE_ALIGNED_ALLOC,
  # which is defined only once a standard header was included, so a file that includes Asio
  # first allocated its recycled coroutine frames with operator new and another freed them with
  # free() (an ODR split that ASan reports as alloc-dealloc-mismatch once -O1 inlines them).
  target_compile_definitions(p2psip_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
                                                   ASIO_HAS_STD_ALIGNED_ALLOC=1)
  add_library(p2psip::asio ALIAS p2psip_asio)
endif()
