package jsonv

import (
	"math"
	"strings"
)

// Numbers are converted here rather than with strconv.ParseInt/ParseFloat:
// their *NumError drags strconv's quoting and Unicode printability tables
// into every module (~40 KB), for values that are small configuration
// numbers.

// Int returns the value of an integer Number (no fraction or exponent) that
// fits in an int64.
func (v *Value) Int() (int64, bool) {
	s, neg, ok := v.unsigned()
	if !ok || s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), true
	case !neg && n <= math.MaxInt64:
		return int64(n), true
	}
	return 0, false
}

// Float returns a Number as a float64. It is exact (correctly rounded) when
// the literal has at most 15 significant digits and a decimal exponent
// within ±22, which covers configuration values such as 0.25 or 1e-3;
// beyond that it may be off by an ulp. Out-of-range magnitudes give ±Inf
// and report false.
func (v *Value) Float() (float64, bool) {
	s, neg, ok := v.unsigned()
	if !ok {
		return 0, false
	}
	var mant uint64
	exp, digits, dot := 0, 0, false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		switch {
		case mant == 0 && c == '0':
			if dot {
				exp--
			}
		case digits < 19:
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				exp--
			}
		case !dot:
			exp++ // digits beyond uint64 precision still scale the value
		}
	}
	if i < len(s) { // exponent
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		e := 0
		for ; i < len(s); i++ {
			if e < 100000 {
				e = e*10 + int(s[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	f := float64(mant)
	switch {
	case mant == 0:
		f = 0
	case exp > 0:
		f *= math.Pow10(exp)
	case exp < 0 && exp >= -22:
		f /= math.Pow10(-exp)
	case exp < 0:
		f = f / math.Pow10(22) / math.Pow10(-exp-22)
	}
	if neg {
		f = -f
	}
	return f, !math.IsInf(f, 0)
}

// unsigned splits a Number's text into its sign and the rest; ok is false
// for any other kind.
func (v *Value) unsigned() (s string, neg, ok bool) {
	if v.Kind != Number {
		return "", false, false
	}
	s, neg = strings.CutPrefix(v.Str, "-")
	return s, neg, true
}
