//! What the native dialect's wire parsing shares: the strict
//! deserializer ([`Strict`]: known fields only, the refusal named), the
//! file entry, and the dialect's names of the domain's fields.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::super::error::ApiError;
use crate::job::{Field, Stage};
use crate::limits::Limit;
use crate::text::clip;

/// One extra file of a request.
#[derive(Debug, Clone, Default, PartialEq, utoipa::ToSchema)]
pub(crate) struct FileEntry {
    /// A relative path in the working directory (`util.py`, `pkg/util.py`).
    pub(crate) name: String,
    pub(crate) content: String,
}

pub(super) fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::InvalidField {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// This dialect's name of a field of the domain.
pub(super) fn field_name(field: Field) -> String {
    match field {
        Field::Main => "code".into(),
        Field::Files => "files".into(),
        Field::Args => "args".into(),
        Field::CompileArgs => "compile_args".into(),
        Field::Stdin => "stdin".into(),
        Field::Outputs => "outputs".into(),
        Field::Tests => "tests".into(),
        Field::Limit(Stage::Run, Limit::wall_time_ms) => "timeout_ms".into(),
        Field::Limit(Stage::Run, Limit::cpu_time_ms) => "cpu_time_ms".into(),
        Field::Limit(stage, limit) => format!("{stage}.{limit}"),
    }
}

/// Deserializes a `T` of known fields only. What serde cannot say with a
/// type (an unknown field, named before its value is read however deep it
/// is; a missing one) is put in `refusal` as the error to answer, and
/// parsing stops there.
pub(super) struct Strict<'a, T> {
    pub(super) refusal: &'a RefCell<Option<ApiError>>,
    _type: std::marker::PhantomData<T>,
}

impl<'a, T> Strict<'a, T> {
    pub(super) fn new(refusal: &'a RefCell<Option<ApiError>>) -> Self {
        Strict {
            refusal,
            _type: std::marker::PhantomData,
        }
    }

    fn refuse<E: de::Error>(&self, refusal: ApiError) -> E {
        let message = refusal.to_string();
        *self.refusal.borrow_mut() = Some(refusal);
        E::custom(message)
    }

    pub(super) fn unknown<E: de::Error>(&self, key: &str) -> E {
        self.refuse(ApiError::UnknownField(clip(key).into_owned()))
    }
}

/// A list of strictly parsed `T`, or null.
impl<'de, T> DeserializeSeed<'de> for Strict<'_, Option<Vec<T>>>
where
    for<'a> Strict<'a, T>: DeserializeSeed<'de, Value = T>,
{
    type Value = Option<Vec<T>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T> Visitor<'de> for Strict<'_, Option<Vec<T>>>
where
    for<'a> Strict<'a, T>: DeserializeSeed<'de, Value = T>,
{
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict::<T>::new(self.refusal))? {
            items.push(item);
        }
        Ok(Some(items))
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_, FileEntry> {
    type Value = FileEntry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FileEntry, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, FileEntry> {
    type Value = FileEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a file object with `name` and `content`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileEntry, A::Error> {
        let (mut name, mut content) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => name = Some(map.next_value::<String>()?),
                "content" => content = Some(map.next_value::<String>()?),
                other => return Err(self.unknown(other)),
            }
        }
        let missing = |field: &str| {
            self.refuse(ApiError::InvalidField {
                field: field.to_string(),
                message: "is required in every file".to_string(),
            })
        };
        match (name, content) {
            (Some(name), Some(content)) => Ok(FileEntry { name, content }),
            (None, _) => Err(missing("name")),
            (_, None) => Err(missing("content")),
        }
    }
}
