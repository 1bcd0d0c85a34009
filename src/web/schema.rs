//! Glue between domain value types and poem-openapi.
//!
//! Domain types parse themselves (`TaskTitle::parse`) and implement serde; the
//! macros here give them an OpenAPI schema built from the same constants that
//! the parser checks, so the contract and the validation cannot drift apart.

/// Implements poem-openapi's `Type`, `ParseFromJSON`, `ToJSON` and
/// `ParseFromParameter` for a type that has serde impls and a `FromStr`-like
/// `parse_param` function, with the given inline schema.
#[macro_export]
macro_rules! openapi_via_serde {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl ::poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed($name)
            }

            fn schema_ref() -> ::poem_openapi::registry::MetaSchemaRef {
                ::poem_openapi::registry::MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(::std::iter::once(self))
            }
        }

        impl ::poem_openapi::types::ParseFromJSON for $ty {
            fn parse_from_json(
                value: Option<::serde_json::Value>,
            ) -> ::poem_openapi::types::ParseResult<Self> {
                ::serde_json::from_value(value.unwrap_or_default())
                    .map_err(::poem_openapi::types::ParseError::custom)
            }
        }

        impl ::poem_openapi::types::ToJSON for $ty {
            fn to_json(&self) -> Option<::serde_json::Value> {
                ::serde_json::to_value(self).ok()
            }
        }
    };
}

/// A value that can be read from one query or path parameter; the error says
/// what would be accepted.
pub trait FromParam: Sized {
    fn from_param(raw: &str) -> Result<Self, String>;
}

/// Adds `ParseFromParameter` (query and path parameters) and [`FromParam`]
/// through the type's `parse_param(&str) -> Result<Self, String>`.
#[macro_export]
macro_rules! openapi_param {
    ($ty:ty) => {
        impl $crate::web::schema::FromParam for $ty {
            fn from_param(raw: &str) -> Result<Self, String> {
                <$ty>::parse_param(raw)
            }
        }

        impl ::poem_openapi::types::ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> ::poem_openapi::types::ParseResult<Self> {
                <$ty>::parse_param(value).map_err(::poem_openapi::types::ParseError::custom)
            }
        }
    };
}

/// A resource id in a path, such as a reminder's: a UUID newtype whose
/// parse error names what the id is of, with its schema, serde and
/// parameter support.
#[macro_export]
macro_rules! uuid_param {
    ($(#[$meta:meta])* $vis:vis struct $name:ident as $schema_name:literal, param $param:literal, of $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $name(pub ::uuid::Uuid);

        impl $name {
            pub fn parse_param(raw: &str) -> Result<Self, String> {
                ::uuid::Uuid::try_parse(raw.trim()).map(Self).map_err(|_| {
                    format!(
                        "must be the id of {}, a UUID as Errand returned it (got `{}`)",
                        $what,
                        $crate::text::shorten(raw)
                    )
                })
            }

            fn schema() -> ::poem_openapi::registry::MetaSchema {
                let mut schema =
                    ::poem_openapi::registry::MetaSchema::new_with_format("string", "uuid");
                schema.example = Some("0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f".into());
                schema
            }
        }

        impl $crate::web::PathParamName for $name {
            const NAME: &'static str = $param;
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse_param(&raw).map_err(::serde::de::Error::custom)
            }
        }

        $crate::openapi_via_serde!($name, $schema_name, $name::schema());
        $crate::openapi_param!($name);
    };
}

/// A closed set of lowercase words, such as a task's priority: the enum, its
/// wire form, a parser whose error lists the accepted words, serde, and an
/// inline `enum` schema.
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $schema_name:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            /// Parses the wire form; the error says which words are accepted.
            pub fn parse_param(raw: &str) -> Result<Self, String> {
                match raw {
                    $( $text => Ok($name::$variant), )+
                    other => Err(format!(
                        "must be one of {} (got `{}`)",
                        [$($text),+].join(", "),
                        $crate::text::shorten(other)
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Words;
                impl<'de> ::serde::de::Visitor<'de> for Words {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of {}", [$($text),+].join(", "))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse_param(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Words)
            }
        }

        $crate::openapi_via_serde!($name, $schema_name, {
            let mut schema = ::poem_openapi::registry::MetaSchema::new("string");
            schema.enum_items = vec![$(::serde_json::Value::from($text)),+];
            schema
        });
        $crate::openapi_param!($name);
    };
}
