//! Phone numbers as Okta sends them: E.164 digits, and the country a calling code names.
//! Shared by the telephony rules (`deny_countries`, `allow_countries`) and the scripts'
//! `phone_digits` and `phone_country` helpers, so that both read a number the same way.

/// ISO 3166 alpha-2 → ITU calling code, for deriving a number's country from its prefix.
/// Countries that share a code with others (the +1 of the North American Numbering Plan)
/// are left out on purpose: a prefix cannot tell them apart. `KZ` has its own `+76`/`+77`
/// inside Russia's `+7`; the longest prefix wins.
#[rustfmt::skip]
pub(crate) const CALLING_CODES: &[(&str, &str)] = &[
    ("EG", "20"), ("ZA", "27"), ("GR", "30"), ("NL", "31"), ("BE", "32"), ("FR", "33"),
    ("ES", "34"), ("HU", "36"), ("IT", "39"), ("RO", "40"), ("CH", "41"), ("AT", "43"),
    ("GB", "44"), ("DK", "45"), ("SE", "46"), ("NO", "47"), ("PL", "48"), ("DE", "49"),
    ("PE", "51"), ("MX", "52"), ("CU", "53"), ("AR", "54"), ("BR", "55"), ("CL", "56"),
    ("CO", "57"), ("VE", "58"), ("MY", "60"), ("AU", "61"), ("ID", "62"), ("PH", "63"),
    ("NZ", "64"), ("SG", "65"), ("TH", "66"), ("JP", "81"), ("KR", "82"), ("VN", "84"),
    ("CN", "86"), ("TR", "90"), ("IN", "91"), ("PK", "92"), ("AF", "93"), ("LK", "94"),
    ("MM", "95"), ("IR", "98"), ("RU", "7"), ("KZ", "76"), ("KZ", "77"), ("MA", "212"),
    ("DZ", "213"), ("TN", "216"), ("LY", "218"), ("SN", "221"), ("GH", "233"), ("NG", "234"),
    ("CM", "237"), ("ET", "251"), ("KE", "254"), ("TZ", "255"), ("UG", "256"), ("ZW", "263"),
    ("PT", "351"), ("LU", "352"), ("IE", "353"), ("IS", "354"), ("AL", "355"), ("MT", "356"),
    ("CY", "357"), ("FI", "358"), ("BG", "359"), ("LT", "370"), ("LV", "371"), ("EE", "372"),
    ("MD", "373"), ("AM", "374"), ("BY", "375"), ("UA", "380"), ("RS", "381"), ("HR", "385"),
    ("SI", "386"), ("CZ", "420"), ("SK", "421"), ("HK", "852"), ("MO", "853"), ("KH", "855"),
    ("BD", "880"), ("TW", "886"), ("LB", "961"), ("JO", "962"), ("IQ", "964"), ("KW", "965"),
    ("SA", "966"), ("YE", "967"), ("OM", "968"), ("AE", "971"), ("IL", "972"), ("BH", "973"),
    ("QA", "974"), ("NP", "977"), ("TJ", "992"), ("TM", "993"), ("AZ", "994"), ("GE", "995"),
    ("KG", "996"), ("UZ", "998"),
];

/// Countries of the North American Numbering Plan (+1), named in the refusal.
#[rustfmt::skip]
pub(crate) const NANP: &[&str] = &[
    "US", "CA", "PR", "VI", "GU", "AS", "MP", "AG", "AI", "BB", "BM", "BS", "DM", "DO", "GD",
    "JM", "KN", "KY", "LC", "MS", "SX", "TC", "TT", "VC", "VG",
];

/// The country whose calling code is the longest prefix of these E.164 digits.
pub(crate) fn country_of(digits: &str) -> Option<&'static str> {
    CALLING_CODES
        .iter()
        .filter(|(_, code)| digits.starts_with(code))
        .max_by_key(|(_, code)| code.len())
        .map(|(country, _)| *country)
}

/// E.164 digits without `+`; spaces, dashes, dots and brackets dropped; `00` read as `+`.
/// A number without `+` is read as E.164 digits too (Okta's preview sends one so).
pub(crate) fn phone_digits(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"))
        .unwrap_or(&compact);
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.to_owned())
}
