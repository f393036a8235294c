# cmake --install and the Debian package (cpack): the daemons and the ion tool, libion with its
# header, CMake and pkg-config files (capi/), the Python package for Debian's python3, the example
# configs, the systemd units and the docs. The dashboard is compiled into ion-broker.
include(GNUInstallDirs)
install(TARGETS ion-broker ion-node ion RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/ion/configs)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/ion/ DESTINATION lib/python3/dist-packages/ion
        PATTERN __pycache__ EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# A manual page per command, from its --help and --version (help2man, Debian's; without it
# there are none and the package says nothing more than `--help` does).
find_program(ION_HELP2MAN help2man)
if(ION_HELP2MAN)
  set(ion_man_ion "run, inspect and test spiking networks that span labs")
  set(ion_man_ion-broker "the hub that routes timestamped spike events between lab nodes")
  set(ion_man_ion-node "connect one lab device, generator, sink or replay to an IoN broker")
  set(ion_man_pages)
  foreach(cmd ion ion-broker ion-node)
    set(page ${PROJECT_BINARY_DIR}/man/${cmd}.1)
    add_custom_command(OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND ${CMAKE_COMMAND} -E env LANG=C.UTF-8 LC_ALL=C.UTF-8 ${ION_HELP2MAN} --no-info
              --name=${ion_man_${cmd}} --section=1 --include=${PROJECT_SOURCE_DIR}/packaging/man/common.h2m
              --output=${page} $<TARGET_FILE:${cmd}>
      COMMAND gzip -9nf ${page}
      DEPENDS ${cmd} ${PROJECT_SOURCE_DIR}/packaging/man/common.h2m VERBATIM)
    list(APPEND ion_man_pages ${page}.gz)
  endforeach()
  add_custom_target(ion_man_pages ALL DEPENDS ${ion_man_pages})
  install(FILES ${ion_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# systemd looks in /lib/systemd/system for a package's units (Debian 12), and in
# PREFIX/lib/systemd/system for a local install.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(ion_unit_dir_default /lib/systemd/system)
else()
  set(ion_unit_dir_default ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(ION_SYSTEMD_UNIT_DIR ${ion_unit_dir_default} CACHE PATH "Where the systemd units are installed")
install(FILES ${PROJECT_SOURCE_DIR}/docker/systemd/ion-broker.service
              ${PROJECT_SOURCE_DIR}/docker/systemd/ion-node@.service
              ${PROJECT_SOURCE_DIR}/docker/systemd/ion-record@.service
        DESTINATION ${ION_SYSTEMD_UNIT_DIR})

# Debian's copyright file and compressed changelog.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
execute_process(COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/packaging/debian/changelog
                OUTPUT_FILE ${PROJECT_BINARY_DIR}/changelog.Debian.gz)
install(FILES ${PROJECT_BINARY_DIR}/changelog.Debian.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ion)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "IoN developers <ion@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "spiking networks of neuro-electronic devices across labs")
# Lines under 80 characters: dpkg shows them as they are.
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "IoN (Internet of Neuro-electronics) connects living neurons on multi-electrode"
  "arrays, silicon spiking-neuron chips, memristive synapse boards and a lab's own"
  "code in different labs into one spiking network. Every event is stamped in one"
  "shared network time and delivered at exactly its source time plus the"
  "connection's delay."
  "."
  "This package holds the broker (ion-broker), the lab node daemon (ion-node), the"
  "ion tool (demo, record, replay, import, export, status, keys, benchmarks),"
  "libion with its C header, the Python package, example configs and systemd"
  "units.")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # runtime dependencies from the binaries' libraries
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, python3-numpy")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)  # libion.so.1: shlibs file and ldconfig trigger
# Our own postinst and postrm (the ldconfig trigger refreshes libion's cache, not the scripts).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm ${PROJECT_SOURCE_DIR}/packaging/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
