# Debian package: binaries, desktop entry, icon, the default calibration text.
install(FILES ${PROJECT_SOURCE_DIR}/installer/aqlm-studio.desktop DESTINATION share/applications)
install(FILES ${PROJECT_SOURCE_DIR}/resources/icons/aqlm-studio.svg DESTINATION share/icons/hicolor/scalable/apps)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "aqlm-studio")
set(CPACK_PACKAGE_VENDOR "AQLM Studio")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Compress local LLMs to 2-3 bits with AQLM and chat with them")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "AQLM Studio developers")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
include(CPack)
