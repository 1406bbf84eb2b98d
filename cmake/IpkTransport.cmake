# ipk_transport(NAME SCHEMES scheme... SOURCES file... [LIBS lib...] [PKG pkg-config-module])
#
# The one line by which a transport joins the library, called from its folder's CMakeLists.txt.
# It adds the option IPK_TRANSPORT_<NAME> (ON by default); when on, the sources are compiled into
# the library and each scheme's table (ipk__tr_<scheme>) goes into the registry; when off, the
# schemes stay known and answer IPK_ENOTBUILT. src/CMakeLists.txt writes the registry.
# LIBS: libraries the transport needs (full paths or names): the shared library links them
# privately, the static one passes them on to its users, the exported targets name them, and
# ipckit.pc lists PKG in Requires.private (the top-level CMakeLists.txt applies them).
function(ipk_transport name)
  cmake_parse_arguments(T "" "PKG" "SCHEMES;SOURCES;LIBS" ${ARGN})
  string(TOUPPER ${name} upper)
  option(IPK_TRANSPORT_${upper} "Build the ${name} transport (${T_SCHEMES})" ON)
  foreach(scheme ${T_SCHEMES})
    if(IPK_TRANSPORT_${upper})
      set_property(GLOBAL APPEND PROPERTY IPK_REGISTRY "IPK__BUILT(${scheme})")
    else()
      set_property(GLOBAL APPEND PROPERTY IPK_REGISTRY "IPK__OFF(${scheme}, ${upper})")
    endif()
  endforeach()
  if(IPK_TRANSPORT_${upper})
    target_sources(ipckit_obj PRIVATE ${T_SOURCES})
    set_property(GLOBAL APPEND PROPERTY IPK_TRANSPORT_LIBS ${T_LIBS})
    set_property(GLOBAL APPEND PROPERTY IPK_TRANSPORT_PKGS ${T_PKG})
  endif()
endfunction()
