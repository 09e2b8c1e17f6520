# The client SDK compiled for size (issue 14 item 5: the stripped libp2psip-client.so held 1.4 MB
# of our own code against an aim of at most 1 MB).
#
# The SDK is what mobile and embedded applications ship, and the peer is what runs the overlay's
# load; they link the same libraries (the codec, crypto glue, TLS link, node layer, configuration,
# SIP codec). So in an optimized build the SDK links copies of them compiled with -Os, one section
# per function and data object, and its link drops the sections nothing uses; the peer, the tools
# and the tests keep the originals (-O3). What it costs: the SDK's own code was 15 % of its
# clients' CPU in a put (perf, docs/benchmarks.md: libsodium, the kernel, libc and Botan are the
# rest, and they are not recompiled), so even a code 20 % slower would cost about 3 %.
#
# p2psip_sdk_size_copies(LIB...): for each library target LIB (in dependency order, each after
# those it links), a static copy LIB_sdk with the same sources, include directories, definitions
# and options, linking the copies of the libraries among LIB... that LIB links, to link instead of
# the originals.
function(p2psip_sdk_size_copies)
  set(renames)  # "original=copy", by target name and by alias
  foreach(lib IN LISTS ARGN)
    get_target_property(sources ${lib} SOURCES)
    get_target_property(source_dir ${lib} SOURCE_DIR)
    set(absolute_sources)
    foreach(s IN LISTS sources)
      if(NOT IS_ABSOLUTE "${s}")
        set(s "${source_dir}/${s}")
      endif()
      list(APPEND absolute_sources "${s}")
    endforeach()
    set(copy ${lib}_sdk)
    add_library(${copy} STATIC ${absolute_sources})
    foreach(property INCLUDE_DIRECTORIES INTERFACE_INCLUDE_DIRECTORIES COMPILE_DEFINITIONS
                     INTERFACE_COMPILE_DEFINITIONS COMPILE_OPTIONS COMPILE_FEATURES
                     INTERFACE_COMPILE_FEATURES)
      get_target_property(value ${lib} ${property})
      if(value)
        set_property(TARGET ${copy} PROPERTY ${property} "${value}")
      endif()
    endforeach()
    foreach(property LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(value ${lib} ${property})
      if(NOT value)
        continue()
      endif()
      set(mapped)
      foreach(item IN LISTS value)
        foreach(pair IN LISTS renames)
          string(REPLACE "=" ";" pair "${pair}")
          list(GET pair 0 from)
          list(GET pair 1 to)
          if(item STREQUAL from)
            set(item ${to})
          else()
            # $<LINK_ONLY:p2psip::protocol> and the like.
            string(REPLACE "<LINK_ONLY:${from}>" "<LINK_ONLY:${to}>" item "${item}")
          endif()
        endforeach()
        list(APPEND mapped "${item}")
      endforeach()
      set_property(TARGET ${copy} PROPERTY ${property} "${mapped}")
    endforeach()
    set_target_properties(${copy} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_compile_options(${copy} PRIVATE -Os -ffunction-sections -fdata-sections)
    string(REPLACE "p2psip_" "p2psip::" alias ${lib})
    list(APPEND renames "${lib}=${copy}" "${alias}=${copy}")
  endforeach()
endfunction()
