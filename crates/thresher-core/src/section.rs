//! Parsing of a tagged config section, `{"kind": NAME, ...}` (`source`, `transform`, `policy`),
//! with errors that keep the key path. A leaf module: the sections' own types use it, and
//! `config` uses theirs, so nothing imports back in a circle.

/// Parses a `{"kind": NAME, ...}` section. serde's internally tagged enums buffer the
/// section and lose the key path of an error inside it (`policy` instead of `policy.epochs`),
/// so the kind is read by hand and the rest parsed with its own path tracking. `variants` maps
/// each kind to a parser of the rest. Errors come out as "config key `SECTION.KEY`: …".
pub(crate) fn tagged_section<'de, D, T>(
    d: D,
    section: &str,
    variants: &[(&str, VariantParser<'_, T>)],
) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let mut map = d.deserialize_map(UniqueKeys { section })?;
    let kind = match map.remove("kind") {
        Some(serde_json::Value::String(k)) => k,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "config key `{section}.kind`: expected a string, found {other}"
            )))
        }
        None => {
            return Err(D::Error::custom(format!(
                "config key `{section}.kind`: missing"
            )))
        }
    };
    let Some((_, parse)) = variants.iter().find(|(name, _)| *name == kind) else {
        let names: Vec<_> = variants.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(D::Error::custom(format!(
            "config key `{section}.kind`: unknown {section} `{kind}`, expected one of {}",
            names.join(", ")
        )));
    };
    parse(serde_json::Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            section.to_string()
        } else {
            format!("{section}.{path}")
        };
        D::Error::custom(format!("config key `{key}`: {}", e.into_inner()))
    })
}

pub(crate) type VariantResult<T> =
    std::result::Result<T, serde_path_to_error::Error<serde_json::Error>>;
pub(crate) type VariantParser<'a, T> = &'a dyn Fn(serde_json::Value) -> VariantResult<T>;

/// `tagged_section`'s parser for one variant.
pub(crate) fn variant<T: serde::de::DeserializeOwned, V>(
    wrap: fn(T) -> V,
) -> impl Fn(serde_json::Value) -> VariantResult<V> {
    move |v| serde_path_to_error::deserialize(v).map(wrap)
}

/// Reads a section's object, refusing a key given twice (serde_json's own map keeps the last
/// one silently, where the top level, a derived struct, refuses duplicates): both levels of the
/// config answer a duplicate the same way.
pub(crate) struct UniqueKeys<'a> {
    pub(crate) section: &'a str,
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys<'_> {
    type Value = serde_json::Map<String, serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an object {{\"kind\": NAME, ...}}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut access: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut map = serde_json::Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: serde_json::Value = access.next_value()?;
            if map.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "config key `{}.{key}`: given twice",
                    self.section
                )));
            }
            map.insert(key, value);
        }
        Ok(map)
    }
}
