//! Reading a pattern or template kept in a file of its own: JSON, or YAML 1.2.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Deepest nesting accepted, as in workflow files.
const MAX_DEPTH: usize = 128;

/// Parses JSON text, or else YAML text, into a JSON value. YAML map keys must be text and
/// numbers finite; the text holds one document.
pub fn read_document(text: &str) -> Result<Value, String> {
    let json_error = match serde_json::from_str(text) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let documents = YamlLoader::load_from_str(text)
        .map_err(|error| format!("neither JSON ({json_error}) nor YAML ({error})"))?;
    match documents.as_slice() {
        [document] => to_json(document, 0),
        [] => Err("the text is empty".into()),
        _ => Err(format!(
            "the text holds {} YAML documents; give one",
            documents.len()
        )),
    }
}

fn to_json(yaml: &Yaml, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
    }
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(flag) => Value::Bool(*flag),
        Yaml::Integer(number) => Value::from(*number),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{text} is not a finite number"))?,
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let Yaml::String(key) = key else {
                    return Err(format!("map key {key:?} is not text"));
                };
                map.insert(key.clone(), to_json(value, depth + 1)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err("an alias or value that could not be read".into());
        }
    })
}
