# Finds LibTorch from the PyPI torch wheel (scripts/setup.sh installs it into a venv and passes
# -DCTXMEM_PYTHON=<venv python>). CPU builds link only libtorch_cpu + libc10, so the CUDA
# libraries the wheel was built against are never needed at link or run time; CTXMEM_CUDA=ON
# links libtorch_cuda as well (needs the CUDA toolkit).
if(NOT CTXMEM_PYTHON)
  set(CTXMEM_PYTHON "$ENV{HOME}/.cache/ctxmem/venv/bin/python")
endif()
execute_process(
  COMMAND ${CTXMEM_PYTHON} -c "import os, importlib.util; print(os.path.dirname(importlib.util.find_spec('torch').origin))"
  OUTPUT_VARIABLE TORCH_DIR OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _torch_rc)
if(NOT _torch_rc EQUAL 0 OR NOT EXISTS "${TORCH_DIR}/lib/libtorch_cpu.so")
  message(FATAL_ERROR "torch not found with CTXMEM_PYTHON=${CTXMEM_PYTHON}; run scripts/setup.sh")
endif()
message(STATUS "LibTorch from ${TORCH_DIR}")

add_library(ctxmem_torch INTERFACE)
# The wheel is built with the new C++ ABI (checked by setup: torch._C._GLIBCXX_USE_CXX11_ABI).
target_compile_definitions(ctxmem_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
target_include_directories(ctxmem_torch SYSTEM INTERFACE
  ${TORCH_DIR}/include ${TORCH_DIR}/include/torch/csrc/api/include)
set(_torch_libs ${TORCH_DIR}/lib/libtorch_cpu.so ${TORCH_DIR}/lib/libc10.so)
if(CTXMEM_CUDA)
  find_package(CUDAToolkit REQUIRED)
  target_compile_definitions(ctxmem_torch INTERFACE CTXMEM_WITH_CUDA=1)
  # --no-as-needed: nothing references libtorch_cuda directly, but loading it registers the
  # CUDA kernels with the dispatcher.
  list(APPEND _torch_libs "-Wl,--no-as-needed" ${TORCH_DIR}/lib/libtorch_cuda.so
       ${TORCH_DIR}/lib/libc10_cuda.so "-Wl,--as-needed" CUDA::cudart)
endif()
target_link_libraries(ctxmem_torch INTERFACE ${_torch_libs} Threads::Threads)
target_link_options(ctxmem_torch INTERFACE "-Wl,-rpath,${TORCH_DIR}/lib")
