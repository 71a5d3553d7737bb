package protocol

// topObject walks the members of a body that must be exactly one JSON object,
// validating as it goes. It is the request parser's loop: a plain loop over
// next costs less than a visitor callback per member.
type topObject struct {
	b    []byte
	i    int  // start of the next member's key
	done bool // the closing brace and the trailing space are validated
}

// openObject starts a walk over body. A body that is not one JSON object gives
// the same bad_request error as parseEnvelope.
func openObject(body []byte) (topObject, *Error) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return topObject{}, parseEnvelope(body, nil)
	}
	o := topObject{b: body, i: skipSpace(body, i+1)}
	if o.i < len(body) && body[o.i] == '}' {
		return o, o.finish(o.i + 1)
	}
	return o, nil
}

// next returns the next member's key and value; ok is false after the last.
func (o *topObject) next() (key, val span, ok bool, e *Error) {
	if o.done {
		return span{}, span{}, false, nil
	}
	b, i := o.b, o.i
	if i >= len(b) || b[i] != '"' {
		return key, val, false, badJSON(unexpected(b, i))
	}
	kend, kesc, err := scanString(b, i)
	if err != nil {
		return key, val, false, badJSON(err)
	}
	key = span{start: i, end: kend, escaped: kesc}
	if i = skipSpace(b, kend); i >= len(b) || b[i] != ':' {
		return key, val, false, badJSON(unexpected(b, i))
	}
	i = skipSpace(b, i+1)
	vend, err := scanValue(b, i, 0)
	if err != nil {
		return key, val, false, badJSON(err)
	}
	val = span{start: i, end: vend, escaped: b[i] == '"'}
	if i = skipSpace(b, vend); i >= len(b) {
		return key, val, false, badJSON(unexpected(b, i))
	}
	switch b[i] {
	case ',':
		o.i = skipSpace(b, i+1)
	case '}':
		if e := o.finish(i + 1); e != nil {
			return key, val, false, e
		}
	default:
		return key, val, false, badJSON(unexpected(b, i))
	}
	return key, val, true, nil
}

// finish checks that only space follows the closing brace, which ends at end.
func (o *topObject) finish(end int) *Error {
	o.done = true
	if end = skipSpace(o.b, end); end < len(o.b) {
		return badJSON(unexpected(o.b, end))
	}
	return nil
}

func badJSON(err *syntaxError) *Error {
	return &Error{Code: CodeBadRequest, Message: err.Error()}
}
