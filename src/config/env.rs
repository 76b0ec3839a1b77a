//! Reading variables: each is declared once as a [`Variable`] with its meaning and default, and
//! read through an [`Env`] that collects every problem instead of stopping at the first, so an
//! operator sees them all at once.

use std::time::Duration;

/// One environment variable bff reads.
#[derive(Clone, Copy, Debug)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// What applies when it is unset.
    pub default: Default,
}

/// What applies when a variable is unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    /// It must be set; the text says how to choose a value.
    Required(&'static str),
    /// A whole number, and the range a value must be in.
    Number {
        /// The default.
        value: u64,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A value, as it would be written.
    Value(&'static str),
    /// Nothing: the text says what that means.
    Unset(&'static str),
}

impl Variable {
    /// A variable that must be set.
    pub const fn required(name: &'static str, meaning: &'static str, hint: &'static str) -> Self {
        Variable {
            name,
            meaning,
            default: Default::Required(hint),
        }
    }

    /// A whole number in `min..=max`, `value` when unset.
    pub const fn number(
        name: &'static str,
        meaning: &'static str,
        value: u64,
        min: u64,
        max: u64,
    ) -> Self {
        Variable {
            name,
            meaning,
            default: Default::Number { value, min, max },
        }
    }

    /// A value, `value` when unset.
    pub const fn value(name: &'static str, meaning: &'static str, value: &'static str) -> Self {
        Variable {
            name,
            meaning,
            default: Default::Value(value),
        }
    }

    /// Optional: when unset, `unset` says what happens.
    pub const fn optional(name: &'static str, meaning: &'static str, unset: &'static str) -> Self {
        Variable {
            name,
            meaning,
            default: Default::Unset(unset),
        }
    }

    /// The default as the documentation shows it.
    pub fn default_text(&self) -> String {
        match self.default {
            Default::Required(_) => "required".to_owned(),
            Default::Number { value, .. } => value.to_string(),
            Default::Value(value) => value.to_owned(),
            Default::Unset(unset) => format!("unset: {unset}"),
        }
    }

    /// The range of a number, as the documentation shows it.
    pub fn range_text(&self) -> Option<String> {
        match self.default {
            Default::Number { min, max, .. } => Some(format!("{min}–{max}")),
            _ => None,
        }
    }
}

/// A variable that is missing or cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    /// A variable is set to something unusable.
    #[error("{0} is malformed: {1}")]
    Malformed(&'static str, String),
}

impl ConfigError {
    /// The variable it is about.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing(name, _) | ConfigError::Malformed(name, _) => name,
        }
    }
}

/// Every problem found in one reading, in the order the variables were read.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where values come from: a variable's name to its value, if set.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where variables come from: the process environment, or a function (tests, `bff dev`).
pub struct Env<'a> {
    lookup: Lookup<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Env<'a> {
    /// Reads through `lookup`, which returns a variable's value if it is set.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env {
            lookup: Box::new(lookup),
            errors: Vec::new(),
        }
    }

    /// The process environment.
    pub fn process() -> Env<'static> {
        Env::new(|name| std::env::var(name).ok())
    }

    /// Nothing set: every variable at its default.
    pub fn empty() -> Env<'static> {
        Env::new(|_| None)
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Records a problem with `variable`.
    pub fn fail(&mut self, variable: &Variable, message: impl Into<String>) {
        self.errors
            .push(ConfigError::Malformed(variable.name, message.into()));
    }

    /// The value of a variable, or its default value; `None` when it is unset and has none
    /// (a required one is then recorded as missing).
    ///
    /// `{NAME}_FILE` names a file holding the value instead (how Docker and Kubernetes mount
    /// secrets); its content is trimmed. Setting both is an error, and so is a file that cannot
    /// be read or is empty (the error names the variable and the path, never the content).
    pub fn text(&mut self, variable: &Variable) -> Option<String> {
        let file_variable = format!("{}_FILE", variable.name);
        match (self.get(variable.name), self.get(&file_variable)) {
            (Some(_), Some(_)) => {
                self.fail(
                    variable,
                    format!("set {} or {file_variable}, not both", variable.name),
                );
                return None;
            }
            (Some(value), None) => return Some(value),
            (None, Some(path)) => {
                let read = std::fs::read_to_string(&path).map(|text| text.trim().to_owned());
                return match read {
                    Ok(value) if !value.is_empty() => Some(value),
                    Ok(_) => {
                        self.fail(variable, format!("{file_variable}: {path} is empty"));
                        None
                    }
                    Err(error) => {
                        self.fail(
                            variable,
                            format!("{file_variable}: cannot read {path}: {error}"),
                        );
                        None
                    }
                };
            }
            (None, None) => {}
        }
        match variable.default {
            Default::Required(hint) => {
                self.errors.push(ConfigError::Missing(variable.name, hint));
                None
            }
            Default::Value(value) => Some(value.to_owned()),
            Default::Number { value, .. } => Some(value.to_string()),
            Default::Unset(_) => None,
        }
    }

    /// The value parsed by `parse` (its error says what was expected); `None` when unset (or
    /// malformed: then the problem is recorded).
    pub fn parse<T>(
        &mut self,
        variable: &Variable,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.text(variable)?;
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.fail(variable, message);
                None
            }
        }
    }

    /// A comma-separated list, each item parsed by `parse`.
    pub fn list<T>(
        &mut self,
        variable: &Variable,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        self.parse(variable, |list| {
            list.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(&parse)
                .collect()
        })
        .unwrap_or_default()
    }

    /// A whole number within the variable's range (its default when unset or malformed).
    pub fn number(&mut self, variable: &Variable) -> u64 {
        let Default::Number { value, min, max } = variable.default else {
            unreachable!("{} is declared as a number", variable.name);
        };
        self.parse(variable, |text| match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "expected a whole number from {min} to {max}, got {text:?}"
            )),
        })
        .unwrap_or(value)
    }

    /// A number of milliseconds within the variable's range.
    pub fn millis(&mut self, variable: &Variable) -> Duration {
        Duration::from_millis(self.number(variable))
    }

    /// The value read, or every problem found while reading it.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// Whether `value` is an `http://` or `https://` URL with a host.
pub fn is_http_url(value: &str) -> bool {
    value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNT: Variable = Variable::number("COUNT", "a count", 5, 1, 10);
    const NAME: Variable = Variable::required("NAME", "a name", "set it");

    #[test]
    fn every_problem_is_collected_and_defaults_apply() {
        let mut env = Env::new(|name| (name == "COUNT").then(|| "eleven".to_owned()));
        assert_eq!(env.number(&COUNT), 5);
        assert_eq!(env.text(&NAME), None);
        let errors = env.finish(()).unwrap_err();
        let names: Vec<_> = errors.0.iter().map(ConfigError::variable).collect();
        assert_eq!(names, ["COUNT", "NAME"]);
        assert!(errors.to_string().contains("from 1 to 10"), "{errors}");
        let mut env = Env::empty();
        assert_eq!(env.number(&COUNT), 5);
        assert_eq!(COUNT.range_text().as_deref(), Some("1–10"));
    }
}
