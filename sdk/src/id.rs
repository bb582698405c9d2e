//! [`ExactId`]: a platform id read exactly, whether the platform sends it as a JSON number or a
//! string.
//!
//! Platform ids routinely exceed 2^53 (WeChat Shop order ids, Douyin message ids), so reading
//! them through a float loses digits, and reading them as `String` refuses the numeric form many
//! platforms use. Derive `Deserialize` with `ExactId` fields and both forms arrive as the same
//! text:
//!
//! ```
//! # use huiliu_sdk::ExactId;
//! #[derive(serde::Deserialize)]
//! struct Order { order_id: ExactId }
//! # fn main() {
//! let a: Order = serde_json::from_str(r#"{"order_id": 3705115058471208928}"#).unwrap();
//! let b: Order = serde_json::from_str(r#"{"order_id": "3705115058471208928"}"#).unwrap();
//! assert_eq!(a.order_id, b.order_id);
//! assert_eq!(a.order_id.as_str(), "3705115058471208928");
//! # }
//! ```
//!
//! A fractional or exponent number is refused (it is not an id, and its digits are already
//! lost); so are booleans, objects and arrays.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A platform id kept exactly as text. Accepts a JSON string or an integer of any sign up to
/// 128 bits; serializes as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExactId(String);

impl ExactId {
    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether the id is empty (an empty string was sent).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<&str> for ExactId {
    fn from(s: &str) -> Self {
        ExactId(s.to_owned())
    }
}

impl From<String> for ExactId {
    fn from(s: String) -> Self {
        ExactId(s)
    }
}

impl From<ExactId> for String {
    fn from(id: ExactId) -> Self {
        id.0
    }
}

impl std::fmt::Display for ExactId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ExactId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

struct ExactIdVisitor;

impl Visitor<'_> for ExactIdVisitor {
    type Value = ExactId;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an id as a string or an integer")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ExactId, E> {
        Ok(ExactId(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<ExactId, E> {
        Ok(ExactId(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExactId, E> {
        Ok(ExactId(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExactId, E> {
        Ok(ExactId(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<ExactId, E> {
        Ok(ExactId(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<ExactId, E> {
        Ok(ExactId(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<ExactId, E> {
        Err(E::custom("an id must be an integer or a string, not a fractional or oversized number"))
    }
}

impl<'de> Deserialize<'de> for ExactId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExactIdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct Holder {
        id: ExactId,
    }

    #[test]
    fn numbers_and_strings_are_the_same_id() {
        let big: u64 = 3_705_115_058_471_208_928;
        let as_number = rmp_serde::to_vec_named(&serde_helpers::Num { id: big }).unwrap();
        let as_text = rmp_serde::to_vec_named(&serde_helpers::Text { id: big.to_string() }).unwrap();
        let a: Holder = rmp_serde::from_slice(&as_number).unwrap();
        let b: Holder = rmp_serde::from_slice(&as_text).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.as_str(), "3705115058471208928");
        let negative = rmp_serde::to_vec_named(&serde_helpers::Signed { id: -42 }).unwrap();
        assert_eq!(rmp_serde::from_slice::<Holder>(&negative).unwrap().id.as_str(), "-42");
        let float = rmp_serde::to_vec_named(&serde_helpers::Float { id: 1.5 }).unwrap();
        assert!(rmp_serde::from_slice::<Holder>(&float).is_err(), "a fractional number is not an id");
        let back = rmp_serde::to_vec_named(&a).unwrap();
        assert_eq!(back, as_text, "an id serializes as text");
    }

    mod serde_helpers {
        #[derive(serde::Serialize)]
        pub struct Num {
            pub id: u64,
        }
        #[derive(serde::Serialize)]
        pub struct Signed {
            pub id: i64,
        }
        #[derive(serde::Serialize)]
        pub struct Text {
            pub id: String,
        }
        #[derive(serde::Serialize)]
        pub struct Float {
            pub id: f64,
        }
    }
}
