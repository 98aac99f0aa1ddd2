# ctxmem_proto: C++ messages and gRPC stubs generated from proto/ctxmem/v1/*.proto into the
# build tree (include as "ctxmem/v1/compressor.grpc.pb.h").
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_program(CTXMEM_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

set(_proto_root ${PROJECT_SOURCE_DIR}/proto)
set(_proto_out ${PROJECT_BINARY_DIR}/proto_gen)
file(GLOB _protos CONFIGURE_DEPENDS ${_proto_root}/ctxmem/v1/*.proto)
file(MAKE_DIRECTORY ${_proto_out})
set(_gen_srcs)
foreach(_proto ${_protos})
  get_filename_component(_stem ${_proto} NAME_WE)
  set(_base ${_proto_out}/ctxmem/v1/${_stem})
  set(_outs ${_base}.pb.cc ${_base}.pb.h ${_base}.grpc.pb.cc ${_base}.grpc.pb.h)
  add_custom_command(
    OUTPUT ${_outs}
    COMMAND protobuf::protoc -I${_proto_root} --cpp_out=${_proto_out} --grpc_out=${_proto_out}
            --plugin=protoc-gen-grpc=${CTXMEM_GRPC_CPP_PLUGIN} ${_proto}
    DEPENDS ${_proto} ${_protos}
    COMMENT "protoc ${_stem}.proto"
    VERBATIM)
  list(APPEND _gen_srcs ${_base}.pb.cc ${_base}.grpc.pb.cc)
endforeach()

add_library(ctxmem_proto STATIC ${_gen_srcs})
target_include_directories(ctxmem_proto PUBLIC ${_proto_out})
target_link_libraries(ctxmem_proto PUBLIC protobuf::libprotobuf gRPC::grpc++)
# Generated code is not ours to warn about.
target_compile_options(ctxmem_proto PRIVATE -w)
