# Installing the client SDK in two components, as Debian splits a library (packaging/ maps them to
# packages): "sdk" is what programs need at run time, libp2psip-client.so.0 (libp2psip-client0);
# "sdk_dev" is what building against it needs: the libp2psip-client.so link, the three public
# headers, a CMake package (find_package(p2psip CONFIG) -> p2psip::client) and p2psip-client.pc
# (libp2psip-client-dev). Everything else the library is built from is linked into it and is not
# installed.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(P2PSIP_CLIENT_PUBLIC_HEADERS
  ${CMAKE_CURRENT_SOURCE_DIR}/include/p2psip/client/client.hpp
  ${CMAKE_CURRENT_SOURCE_DIR}/include/p2psip/client/errors.hpp
  ${CMAKE_CURRENT_SOURCE_DIR}/include/p2psip/client/p2psip_client.h)
set_target_properties(p2psip_client PROPERTIES
  EXPORT_NAME client
  PUBLIC_HEADER "${P2PSIP_CLIENT_PUBLIC_HEADERS}")

install(TARGETS p2psip_client EXPORT p2psip-targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk NAMELINK_COMPONENT sdk_dev
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/p2psip/client COMPONENT sdk_dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(P2PSIP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/p2psip)
install(EXPORT p2psip-targets
  NAMESPACE p2psip::
  FILE p2psip-targets.cmake
  DESTINATION ${P2PSIP_CMAKE_DIR}
  COMPONENT sdk_dev)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/p2psip-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/p2psip-config.cmake
  INSTALL_DESTINATION ${P2PSIP_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/p2psip-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/p2psip-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/p2psip-config-version.cmake
        DESTINATION ${P2PSIP_CMAKE_DIR}
        COMPONENT sdk_dev)

# pkg-config: prefix relative to the .pc file, so that `cmake --install --prefix` anywhere works.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(P2PSIP_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(P2PSIP_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH P2PSIP_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" P2PSIP_PC_UP "${P2PSIP_PC_UP}")
  set(P2PSIP_PC_PREFIX "\${pcfiledir}/${P2PSIP_PC_UP}")
  set(P2PSIP_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(P2PSIP_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(P2PSIP_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/p2psip-client.pc.in
               ${CMAKE_CURRENT_BINARY_DIR}/p2psip-client.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/p2psip-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT sdk_dev)
