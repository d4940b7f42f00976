//! Compiles `boxoffice/v1/*.proto` with protox (pure Rust, no `protoc`) into the messages, the
//! servers and the clients, and keeps the encoded descriptor set for gRPC server reflection.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos: Vec<PathBuf> = fs::read_dir("boxoffice/v1")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let fds = protox::compile(&protos, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("boxoffice_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // Malformed messages are the caller's mistake: INVALID_ARGUMENT (see src/codec.rs).
    tonic_prost_build::configure().codec_path("crate::codec::StrictCodec").compile_fds(fds)?;
    Ok(())
}
