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
# No libsystemd: p2psip-peer speaks systemd's notification protocol itself (Type=notify: READY=1
# once joined, STATUS=, WATCHDOG=1; peer/daemon/service_notifier.cpp says why).

# Static copies for the peer (issue 16: RSS per idle peer). A program whose P2PSIP_STATIC_LIBS
# property is ON (p2psip_link_libraries_statically below: p2psip-peer and p2psip-admin) links
# Debian's libbotan-2.a, libsodium.a, libpugixml.a and libsqlite3.a; everything else (the SDK,
# its CLI, the tests) links the shared libraries as before. The property is read on the program
# being linked, wherever in its dependencies these targets come in. Measured on a lone idle peer
# (release): VmRSS 15.5 -> 12.1 MiB, of it private 2224 -> 1672 KiB (docs/benchmarks.md, "Real
# peers at scale"). Botan alone is most of it (-3.1 MiB): its shared library is resident far
# beyond what we call (3.7 MiB), it drags in libtspi and through it OpenSSL's libcrypto (1.4 MiB,
# 0.4 of it relocated, so private), and the linker takes from an archive only the objects used.
option(P2PSIP_STATIC_PEER_LIBS
       "Link Botan, libsodium, pugixml and SQLite statically into p2psip-peer and p2psip-admin" ON)

# p2psip_static_on_request(TARGET ARCHIVE): TARGET (an imported library) links ARCHIVE instead of
# what it linked when the program being linked asks for static copies.
function(p2psip_static_on_request target archive)
  if(NOT EXISTS "${archive}")
    message(FATAL_ERROR "P2PSIP_STATIC_PEER_LIBS: ${archive} is missing "
                        "(or configure with -DP2PSIP_STATIC_PEER_LIBS=OFF)")
  endif()
  get_target_property(shared ${target} INTERFACE_LINK_LIBRARIES)
  set(wanted "$<BOOL:$<TARGET_PROPERTY:P2PSIP_STATIC_LIBS>>")
  set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES
               "$<${wanted}:${archive}>" "$<$<NOT:${wanted}>:${shared}>")
endfunction()

# p2psip_link_libraries_statically(PROGRAM): PROGRAM links the static copies (when
# P2PSIP_STATIC_PEER_LIBS is ON).
#
# The C++ standard library too (-static-libstdc++): the program then maps only the parts of it
# that it uses. Measured on 30 idle peers (release): RSS 11.3 -> 10.7-10.9 MiB median, PSS 2.0
# -> 1.9 MiB. The admin HTTP module that p2psip-peer may open uses the shared libstdc++: the boundary
# between them is C (peer/admin_http/include/p2psip/peer/admin_module.hpp), so no standard
# library object crosses it.
function(p2psip_link_libraries_statically program)
  if(P2PSIP_STATIC_PEER_LIBS)
    set_property(TARGET ${program} PROPERTY P2PSIP_STATIC_LIBS ON)
    target_link_options(${program} PRIVATE -static-libstdc++)
  endif()
endfunction()

if(P2PSIP_STATIC_PEER_LIBS AND NOT P2PSIP_SDK_ONLY)
  p2psip_static_on_request(PkgConfig::BOTAN ${BOTAN_LIBRARY_DIRS}/libbotan-2.a)
  p2psip_static_on_request(PkgConfig::SODIUM ${SODIUM_LIBRARY_DIRS}/libsodium.a)
  p2psip_static_on_request(PkgConfig::PUGIXML ${PUGIXML_LIBRARY_DIRS}/libpugixml.a)
  # SQLite's target is made here, before peer/storage's find_package(SQLite3) would make one
  # (FindSQLite3 keeps an existing SQLite::SQLite3 and reads the same cache variables), so that
  # it can choose like the others.
  find_path(SQLite3_INCLUDE_DIR NAMES sqlite3.h)
  find_library(SQLite3_LIBRARY NAMES sqlite3)
  if(SQLite3_INCLUDE_DIR AND SQLite3_LIBRARY)
    get_filename_component(sqlite_dir "${SQLite3_LIBRARY}" DIRECTORY)
    add_library(SQLite::SQLite3 INTERFACE IMPORTED)
    set_target_properties(SQLite::SQLite3 PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${SQLite3_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${SQLite3_LIBRARY}")
    p2psip_static_on_request(SQLite::SQLite3 ${sqlite_dir}/libsqlite3.a)
  endif()
endif()

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
