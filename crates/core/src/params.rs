//! Task parameters: typed on the task's side, JSON on the job's side, and
//! validated before anything runs.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::ParamProblem;

/// A task's parameter type.
///
/// Usually derived: `#[derive(Serialize, Deserialize, runyard::Params)]`,
/// with constraints on fields as `#[param(min = 1)]`; the derive also
/// describes the fields for `runyard describe`. Implemented for `()` (no
/// parameters) and `serde_json::Value` (anything, unchecked).
pub trait Params: Serialize + DeserializeOwned + Send + 'static {
    /// Checks the declared constraints.
    fn validate(&self) -> Result<(), Violation> {
        Ok(())
    }

    /// Describes the fields: names, types, defaults, constraints.
    fn schema() -> ParamSchema
    where
        Self: Sized,
    {
        ParamSchema::free_form()
    }

    /// Reads the parameters from a JSON object; errors name the field.
    fn decode(json: &str) -> Result<Self, String>
    where
        Self: Sized,
    {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = plain_expected(strip_position(&inner));
            // "unknown field `x`" names the field already.
            if path == "." || path.is_empty() || inner.starts_with("unknown field") {
                inner
            } else {
                format!("`{path}`: {inner}")
            }
        })
    }
}

/// serde_json appends " at line 1 column 17" to its messages; that position
/// is in the engine's own JSON, not in anything the user wrote.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// serde says which Rust type a number must fit ("invalid value: integer
/// `-1`, expected u32"); a user is told what may be written instead
/// ("expected a whole number from 0 to 4294967295").
fn plain_expected(msg: &str) -> String {
    let Some((head, expected)) = msg.rsplit_once(", expected ") else {
        return msg.to_string();
    };
    let range = match expected {
        "u8" => "a whole number from 0 to 255".to_string(),
        "u16" => format!("a whole number from 0 to {}", u16::MAX),
        "u32" => format!("a whole number from 0 to {}", u32::MAX),
        "u64" | "usize" => format!("a whole number from 0 to {}", u64::MAX),
        "i8" => "a whole number from -128 to 127".to_string(),
        "i16" => format!("a whole number from {} to {}", i16::MIN, i16::MAX),
        "i32" => format!("a whole number from {} to {}", i32::MIN, i32::MAX),
        "i64" | "isize" => format!("a whole number from {} to {}", i64::MIN, i64::MAX),
        "f32" | "f64" => "a number".to_string(),
        _ => return msg.to_string(),
    };
    let head = head.replace(" as i128", "").replace(" as u128", "");
    format!("{head}, expected {range}")
}

impl Params for () {
    fn schema() -> ParamSchema {
        ParamSchema::none()
    }

    fn decode(json: &str) -> Result<(), String> {
        match json.trim() {
            "{}" | "null" | "" => Ok(()),
            other => Err(format!("this task takes no parameters, got {other}")),
        }
    }
}

impl Params for Value {}

/// A broken constraint, as reported by [`Params::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field, e.g. `n` or `retry.max`.
    pub field: String,
    /// The constraint, e.g. `>= 1`.
    pub constraint: String,
    /// The value given, as JSON.
    pub value: String,
}

impl Violation {
    /// A violation of `constraint` by `field`, whose value is shown as JSON.
    pub fn new(
        field: impl Into<String>,
        constraint: impl Into<String>,
        value: &impl Serialize,
    ) -> Violation {
        Violation {
            field: field.into(),
            constraint: constraint.into(),
            value: serde_json::to_string(value).unwrap_or_else(|_| "?".to_string()),
        }
    }

    /// Prefixes the field with a parent path (for nested parameter structs).
    pub fn within(mut self, parent: &str) -> Violation {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

impl From<Violation> for ParamProblem {
    fn from(v: Violation) -> ParamProblem {
        ParamProblem::Constraint {
            field: v.field,
            constraint: v.constraint,
            value: v.value,
        }
    }
}

/// The shape of a task's parameters, for `runyard describe` and docs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSchema {
    /// The declared fields.
    pub fields: Vec<FieldSchema>,
    /// Whether any JSON object is accepted (the fields are not known).
    pub free_form: bool,
}

impl ParamSchema {
    /// No parameters at all.
    pub fn none() -> ParamSchema {
        ParamSchema {
            fields: Vec::new(),
            free_form: false,
        }
    }

    /// Any JSON object.
    pub fn free_form() -> ParamSchema {
        ParamSchema {
            fields: Vec::new(),
            free_form: true,
        }
    }
}

/// One parameter.
///
/// Serialized with its type as a user writes it (`type`: `integer`, `list
/// of strings`, see [`FieldSchema::type_name`]) beside the Rust type
/// (`rust_type`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSchema {
    /// The name as written in job files and on the command line.
    pub name: String,
    /// The Rust type, e.g. `u64` or `Option<String>`.
    pub ty: String,
    /// The type as the parameter struct names it for people
    /// (`#[param(type = "string or list of strings")]`), where the Rust
    /// type says little; shown instead of what [`FieldSchema::type_name`]
    /// reads from the Rust type.
    pub type_label: Option<String>,
    /// Whether a job must give it.
    pub required: bool,
    /// The value used when it is not given.
    pub default: Option<Value>,
    /// Constraints, e.g. `>= 1`.
    pub constraints: Vec<String>,
    /// The field's doc comment.
    pub doc: String,
}

impl FieldSchema {
    /// The type in a job's terms rather than Rust's: `integer`, `number`,
    /// `boolean`, `string`, `path`, `duration`, `list of integers`, `map of
    /// string to string`; `Option<T>` is `T` (whether a field may be left
    /// out is [`FieldSchema::required`]). A type of the task's own is a
    /// `value` (its doc comment says what it takes), unless the struct
    /// names it with `#[param(type = "...")]`.
    pub fn type_name(&self) -> String {
        match &self.type_label {
            Some(label) => label.clone(),
            None => type_name(&self.ty.replace(' ', ""), false),
        }
    }
}

/// The words for the Rust type `ty` (without spaces), plural in a list.
fn type_name(ty: &str, plural: bool) -> String {
    let (outer, args) = match ty.split_once('<') {
        Some((o, rest)) if rest.ends_with('>') => (o, Some(&rest[..rest.len() - 1])),
        _ => (ty, None),
    };
    // `std::time::Duration` reads as `Duration`.
    let outer = outer.rsplit("::").next().unwrap_or(outer);
    let word = |one: &str, many: &str| if plural { many } else { one }.to_string();
    match (outer, args) {
        ("Option" | "Box", Some(t)) => type_name(t, plural),
        ("Vec" | "VecDeque" | "HashSet" | "BTreeSet", Some(t)) => {
            format!("{} of {}", word("list", "lists"), type_name(t, true))
        }
        ("HashMap" | "BTreeMap", Some(kv)) => match split_args(kv) {
            Some((k, v)) => format!(
                "{} of {} to {}",
                word("map", "maps"),
                type_name(k, false),
                type_name(v, false)
            ),
            None => word("map", "maps"),
        },
        (
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
            | "isize",
            None,
        ) => word("integer", "integers"),
        ("f32" | "f64", None) => word("number", "numbers"),
        ("bool", None) => word("boolean", "booleans"),
        ("String" | "str" | "&str" | "char" | "Cow", _) => word("string", "strings"),
        ("PathBuf" | "Path" | "&Path", None) => word("path", "paths"),
        ("Duration", None) => word("duration", "durations"),
        _ => word("value", "values"),
    }
}

/// `K,V` split at its top-level comma.
fn split_args(kv: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    for (i, c) in kv.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => return Some((&kv[..i], &kv[i + 1..])),
            _ => {}
        }
    }
    None
}

impl Serialize for FieldSchema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("FieldSchema", 7)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("type", &self.type_name())?;
        st.serialize_field("rust_type", &self.ty)?;
        st.serialize_field("required", &self.required)?;
        st.serialize_field("default", &self.default)?;
        st.serialize_field("constraints", &self.constraints)?;
        st.serialize_field("doc", &self.doc)?;
        st.end()
    }
}

/// A job's parameters as a JSON object, shared cheaply between copies of a
/// job. The empty object is stored without allocating.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct JobParams(Option<Arc<str>>);

impl JobParams {
    /// No parameters: `{}`.
    pub const fn empty() -> JobParams {
        JobParams(None)
    }

    /// From a JSON value, which must be an object (or null, meaning `{}`).
    pub fn from_value(v: Value) -> Result<JobParams, ParamProblem> {
        match v {
            Value::Null => Ok(JobParams(None)),
            Value::Object(m) if m.is_empty() => Ok(JobParams(None)),
            Value::Object(m) => Ok(JobParams(Some(Value::Object(m).to_string().into()))),
            other => Err(ParamProblem::NotAnObject(other.to_string())),
        }
    }

    /// From JSON text, which must hold an object.
    pub fn from_json(text: &str) -> Result<JobParams, ParamProblem> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| ParamProblem::Decode(e.to_string()))?;
        JobParams::from_value(v)
    }

    /// From JSON text that another `JobParams` produced (it is not checked:
    /// a task reading it reports bad parameters as a permanent error).
    pub fn from_trusted_json(text: &str) -> JobParams {
        match text {
            "{}" | "" => JobParams(None),
            other => JobParams(Some(other.into())),
        }
    }

    /// The JSON text (`{}` when empty).
    pub fn as_json(&self) -> &str {
        self.0.as_deref().unwrap_or("{}")
    }

    /// As a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.as_json()).unwrap_or(Value::Null)
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for JobParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl fmt::Display for JobParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl Serialize for JobParams {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_str(self.as_json()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JobParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JobParams, D::Error> {
        JobParams::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        n: u64,
        name: Option<String>,
    }
    impl Params for P {}

    #[test]
    fn decode_errors_name_the_field_without_engine_positions() {
        let e = P::decode(r#"{"n": "many"}"#).err().unwrap();
        assert_eq!(
            e,
            "`n`: invalid type: string \"many\", expected a whole number from 0 to 18446744073709551615"
        );
        let e = P::decode(r#"{"n": 1, "nn": 2}"#).err().unwrap();
        assert!(
            e.starts_with("unknown field `nn`, expected `n` or `name`"),
            "{e}"
        );
        let e = P::decode(r#"{}"#).err().unwrap();
        assert_eq!(e, "missing field `n`");
    }

    #[test]
    fn number_errors_say_which_numbers_are_accepted() {
        #[derive(Debug, Serialize, Deserialize)]
        struct N {
            a: u32,
            b: i32,
            c: f64,
        }
        impl Params for N {}
        let e = N::decode(r#"{"a": -1, "b": 0, "c": 0}"#).unwrap_err();
        assert_eq!(
            e,
            "`a`: invalid value: integer `-1`, expected a whole number from 0 to 4294967295"
        );
        let e = N::decode(r#"{"a": 1.8446744073709552e19, "b": 0, "c": 0}"#).unwrap_err();
        assert_eq!(
            e,
            "`a`: invalid type: floating point `1.8446744073709552e+19`, \
             expected a whole number from 0 to 4294967295"
        );
        let e = N::decode(r#"{"a": 1, "b": 3000000000, "c": 0}"#).unwrap_err();
        assert!(
            e.ends_with("expected a whole number from -2147483648 to 2147483647"),
            "{e}"
        );
        let e = N::decode(r#"{"a": 1, "b": 1, "c": "x"}"#).unwrap_err();
        assert_eq!(e, "`c`: invalid type: string \"x\", expected a number");
        // Other expectations are left as serde says them.
        let e = P::decode(r#"{"n": 1, "name": 5}"#).err().unwrap();
        assert_eq!(e, "`name`: invalid type: integer `5`, expected a string");
    }

    #[test]
    fn field_types_are_named_as_a_job_writes_them() {
        let field = |ty: &str| FieldSchema {
            name: "f".into(),
            ty: ty.into(),
            type_label: None,
            required: false,
            default: None,
            constraints: Vec::new(),
            doc: String::new(),
        };
        let name = |ty: &str| field(ty).type_name();
        assert_eq!(name("u64"), "integer");
        // A type the struct names for people is shown as it names it.
        let cmd = FieldSchema {
            type_label: Some("string or list of strings".into()),
            ..field("Cmd")
        };
        assert_eq!(
            (name("Cmd").as_str(), cmd.type_name().as_str()),
            ("value", "string or list of strings")
        );
        assert_eq!(name("Option<u32>"), "integer");
        assert_eq!(name("Option < i64 >"), "integer");
        assert_eq!(name("f64"), "number");
        assert_eq!(name("bool"), "boolean");
        assert_eq!(name("String"), "string");
        assert_eq!(name("Option<PathBuf>"), "path");
        assert_eq!(name("std::time::Duration"), "duration");
        assert_eq!(name("Vec<String>"), "list of strings");
        assert_eq!(name("Vec<i32>"), "list of integers");
        assert_eq!(name("Vec<Vec<u8>>"), "list of lists of integers");
        assert_eq!(name("BTreeMap<String, String>"), "map of string to string");
        assert_eq!(
            name("HashMap<String,Vec<u64>>"),
            "map of string to list of integers"
        );
        assert_eq!(name("Cmd"), "value");
        let json = serde_json::to_value(field("Option<u32>")).unwrap();
        assert_eq!(json["type"], "integer");
        assert_eq!(json["rust_type"], "Option<u32>");
    }

    #[test]
    fn unit_params_refuse_parameters() {
        assert!(<()>::decode("{}").is_ok());
        assert!(<()>::decode(r#"{"x": 1}"#)
            .unwrap_err()
            .contains("takes no parameters"));
    }

    #[test]
    fn job_params_are_objects() {
        assert!(JobParams::from_value(serde_json::json!({}))
            .unwrap()
            .is_empty());
        assert_eq!(
            JobParams::from_value(serde_json::json!({"n": 5}))
                .unwrap()
                .as_json(),
            r#"{"n":5}"#
        );
        assert!(matches!(
            JobParams::from_value(serde_json::json!(5)),
            Err(ParamProblem::NotAnObject(_))
        ));
        let p = JobParams::from_json(r#"{"a":[1,2]}"#).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"a":[1,2]}"#);
    }
}
