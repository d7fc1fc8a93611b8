//! Serialising a start argument, with the reason when that fails.
//!
//! postcard reports a `Serialize` impl's own error (`S::Error::custom(msg)`)
//! as a bare "Serde Serialization Error", dropping `msg`. When that happens
//! the argument is serialised a second time into [`Sink`], a serializer that
//! writes nothing and keeps the message, so that
//! [`ProcessError::Encode`](super::ProcessError::Encode) can say what went
//! wrong.

use std::fmt;

use serde::Serialize;
use serde::ser;

/// Serialises `value` with postcard; on failure, the best message found.
pub(super) fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(value).map_err(|e| match e {
        postcard::Error::SerdeSerCustom => match value.serialize(Sink) {
            Err(Message(m)) => m,
            Ok(()) => e.to_string(),
        },
        other => other.to_string(),
    })
}

/// The error of [`Sink`]: the message given to `custom`.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl ser::Error for Message {
    fn custom<M: fmt::Display>(msg: M) -> Message {
        Message(msg.to_string())
    }
}

/// A serializer that accepts everything and writes nothing.
struct Sink;

macro_rules! accept {
    ($($name:ident($($t:ty),*);)*) => {
        $(fn $name(self, $(_: $t),*) -> Result<(), Message> { Ok(()) })*
    };
}

impl ser::Serializer for Sink {
    type Ok = ();
    type Error = Message;
    type SerializeSeq = Sink;
    type SerializeTuple = Sink;
    type SerializeTupleStruct = Sink;
    type SerializeTupleVariant = Sink;
    type SerializeMap = Sink;
    type SerializeStruct = Sink;
    type SerializeStructVariant = Sink;

    accept! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_f32(f32);
        serialize_f64(f64); serialize_char(char); serialize_str(&str); serialize_bytes(&[u8]);
        serialize_none(); serialize_unit(); serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Message> {
        v.serialize(Sink)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), Message> {
        v.serialize(Sink)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), Message> {
        v.serialize(Sink)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Sink, Message> {
        Ok(Sink)
    }

    fn serialize_tuple(self, _: usize) -> Result<Sink, Message> {
        Ok(Sink)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Sink, Message> {
        Ok(Sink)
    }

    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Sink, Message> {
        Ok(Sink)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Sink, Message> {
        Ok(Sink)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Sink, Message> {
        Ok(Sink)
    }

    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Sink, Message> {
        Ok(Sink)
    }
}

macro_rules! compound {
    ($($trait:ident :: $method:ident ($($key:ty),*);)*) => {$(
        impl ser::$trait for Sink {
            type Ok = ();
            type Error = Message;

            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $key,)* v: &T) -> Result<(), Message> {
                v.serialize(Sink)
            }

            fn end(self) -> Result<(), Message> {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq::serialize_element();
    SerializeTuple::serialize_element();
    SerializeTupleStruct::serialize_field();
    SerializeTupleVariant::serialize_field();
    SerializeStruct::serialize_field(&'static str);
    SerializeStructVariant::serialize_field(&'static str);
}

impl ser::SerializeMap for Sink {
    type Ok = ();
    type Error = Message;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Message> {
        k.serialize(Sink)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Message> {
        v.serialize(Sink)
    }

    fn end(self) -> Result<(), Message> {
        Ok(())
    }
}
