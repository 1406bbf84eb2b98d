# ipk_transport(NAME SCHEMES scheme... SOURCES file...)
#
# The one line by which a transport joins the library, called from its folder's CMakeLists.txt.
# It adds the option IPK_TRANSPORT_<NAME> (ON by default); when on, the sources are compiled into
# the library and each scheme's table (ipk__tr_<scheme>) goes into the registry; when off, the
# schemes stay known and answer IPK_ENOTBUILT. src/CMakeLists.txt writes the registry.
function(ipk_transport name)
  cmake_parse_arguments(T "" "" "SCHEMES;SOURCES" ${ARGN})
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
  endif()
endfunction()
