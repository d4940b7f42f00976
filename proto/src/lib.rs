//! Boxoffice's gRPC contract, package `boxoffice.v1`, generated at build time from
//! `proto/boxoffice/v1/*.proto`: messages, servers (used by the `boxoffice` server) and clients
//! (used by its tests and `boxoffice loadtest --grpc`).

pub mod codec;

#[allow(clippy::all, clippy::pedantic)] // generated code
pub mod v1 {
    tonic::include_proto!("boxoffice.v1");
}

/// The encoded `FileDescriptorSet` of the contract (and the well-known types it imports), for
/// gRPC server reflection: `grpcurl` needs no `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/boxoffice_descriptor.bin"));
