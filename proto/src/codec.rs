//! The codec every generated service and client uses: prost's encoding, with one difference. A
//! message that is not valid protobuf for its type is `INVALID_ARGUMENT`, not prost's `INTERNAL`.
//!
//! The gRPC status table files "error parsing request proto" under `INTERNAL`, but for a
//! Boxoffice client that reads as "the server broke", and our rule is that bad input gets the
//! status that says whose mistake it was: the bytes came from the caller, as a malformed JSON body
//! over REST is a 400. (Our own clients decode the server's answers with the same codec; an
//! answer they cannot parse is equally a malformed message, and they only occur in tests and the
//! load harness.)

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;

/// prost's codec with malformed messages answered `INVALID_ARGUMENT` (see the module docs).
#[derive(Debug, Clone)]
pub struct StrictCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(PhantomData)
    }
}

/// Decodes `U`, refusing bytes that are not one as `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct StrictDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("the message is not valid protobuf for its type: {e}")))
    }
}
