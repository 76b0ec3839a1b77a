//! Custom scalars: `Decimal` (exact money as a string).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// An exact amount of money held as integer cents, shown as a decimal string ("12.50").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal(pub i64);

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let cents = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", cents / 100, cents % 100)
    }
}

impl std::str::FromStr for Decimal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{s:?} is not a decimal amount with at most two decimal places");
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || whole.len() > 15
            || fraction.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        let cents = whole * 100 + fraction;
        Ok(Decimal(if negative { -cents } else { cents }))
    }
}

/// An exact decimal amount as a string, e.g. "12.50" — never a float.
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => s.parse().map_err(InputValueError::custom),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn formats_cents_as_a_two_place_decimal() {
        assert_eq!(Decimal(1250).to_string(), "12.50");
        assert_eq!(Decimal(5).to_string(), "0.05");
        assert_eq!(Decimal(-1999).to_string(), "-19.99");
        assert_eq!(Decimal(0).to_string(), "0.00");
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!("12.5".parse(), Ok(Decimal(1250)));
        assert_eq!("0.05".parse(), Ok(Decimal(5)));
        assert_eq!("-3".parse(), Ok(Decimal(-300)));
        assert!("1.234".parse::<Decimal>().is_err());
        assert!("1e3".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
    }
}
