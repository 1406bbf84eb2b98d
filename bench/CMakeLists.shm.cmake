# shm: benchmarks (issue 4). Include from bench/CMakeLists.txt:  include(CMakeLists.shm.cmake)
# shm_baseline is standalone (no ipckit): the raw cache-line ping-pong, the raw fixed-slot SPSC
# ring and the pipe round trip. shm_vs_raw runs the same measures on ipckit's shm: in the same
# run and prints the ratios. Run them from a Release build: build/bench/shm_vs_raw -r 7
add_executable(shm_baseline ${CMAKE_CURRENT_LIST_DIR}/shm_baseline.c)
target_compile_options(shm_baseline PRIVATE -O2)
target_include_directories(shm_baseline PRIVATE ${CMAKE_SOURCE_DIR}/tools/ipckit)
add_executable(shm_vs_raw ${CMAKE_CURRENT_LIST_DIR}/shm_vs_raw.c)
target_compile_options(shm_vs_raw PRIVATE -O2)
target_include_directories(shm_vs_raw PRIVATE ${CMAKE_SOURCE_DIR}/tools/ipckit)
target_link_libraries(shm_vs_raw PRIVATE ipckit_static)
