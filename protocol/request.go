package protocol

// Request is a parsed request body. Method and Params alias the parsed body, or
// the Request's own scratch space when "in" was spelled with escapes; both stay
// valid until the body is reused or the Request is parsed into again.
type Request struct {
	Method []byte
	Params []byte // raw JSON exactly as sent; "null" when absent
	buf    []byte
}

var null = []byte("null")

// ParseRequest validates body as JSON and extracts "in" and "params". Any
// failure is an *Error with code bad_request. A Request reused across calls
// parses without allocating.
func ParseRequest(body []byte, req *Request) error {
	var in, params span
	var hasIn, hasParams bool
	obj, err := openObject(body)
	for err == nil {
		key, val, ok, e := obj.next()
		if err = e; !ok {
			break
		}
		switch {
		case keyIs(body, key, "in"):
			in, hasIn = val, true
		case keyIs(body, key, "params"):
			params, hasParams = val, true
		}
	}
	if err != nil {
		return err
	}
	if !hasIn {
		return &Error{Code: CodeBadRequest, Message: `request has no "in" member`}
	}
	if body[in.start] != '"' {
		return &Error{Code: CodeBadRequest, Message: `"in" must be a string`}
	}
	req.Method = stringValue(body, in, &req.buf)
	req.Params = null
	if hasParams {
		req.Params = body[params.start:params.end]
	}
	return nil
}

// Response is a parsed answer body.
type Response struct {
	Out    []byte // decoded "out"
	Result []byte // raw JSON of "result"; "null" when absent
	buf    []byte
}

// ParseResponse validates an answer body and extracts "out" and "result".
func ParseResponse(body []byte, resp *Response) error {
	var out, result span
	var hasOut, hasResult bool
	err := parseEnvelope(body, func(key, val span) {
		switch {
		case keyIs(body, key, "out"):
			out, hasOut = val, true
		case keyIs(body, key, "result"):
			result, hasResult = val, true
		}
	})
	if err != nil {
		return err
	}
	if !hasOut || body[out.start] != '"' {
		return &Error{Code: CodeBadRequest, Message: `answer has no string "out" member`}
	}
	resp.Out = stringValue(body, out, &resp.buf)
	resp.Result = null
	if hasResult {
		resp.Result = body[result.start:result.end]
	}
	return nil
}

// AsError decodes the result of an answer whose out is "error". ok is false when
// the answer is a success or its result is not a well-formed error object.
func (r *Response) AsError() (e *Error, ok bool) {
	if string(r.Out) != "error" {
		return nil, false
	}
	var code, msg span
	var hasCode, hasMsg bool
	res := r.Result
	if parseEnvelope(res, func(key, val span) {
		switch {
		case keyIs(res, key, "code"):
			code, hasCode = val, res[val.start] == '"'
		case keyIs(res, key, "message"):
			msg, hasMsg = val, res[val.start] == '"'
		}
	}) != nil || !hasCode {
		return nil, false
	}
	e = &Error{Code: string(unquote(nil, res[code.start+1:code.end-1]))}
	if hasMsg {
		e.Message = string(unquote(nil, res[msg.start+1:msg.end-1]))
	}
	return e, true
}

// parseEnvelope validates body as one JSON object, reporting its members.
func parseEnvelope(body []byte, visit member) *Error {
	i := skipSpace(body, 0)
	if i < len(body) && body[i] == '{' {
		end, err := scanObject(body, i, 0, visit)
		if err == nil {
			if end = skipSpace(body, end); end < len(body) {
				err = unexpected(body, end)
			}
		}
		if err != nil {
			return &Error{Code: CodeBadRequest, Message: err.Error()}
		}
		return nil
	}
	end, err := scanValue(body, i, 0)
	if err == nil {
		if end = skipSpace(body, end); end < len(body) {
			err = unexpected(body, end)
		}
	}
	if err != nil {
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return &Error{Code: CodeBadRequest, Message: "body must be a JSON object"}
}

// stringValue returns the contents of the string at v, decoding escapes into
// *scratch only when there are any.
func stringValue(body []byte, v span, scratch *[]byte) []byte {
	raw := body[v.start+1 : v.end-1]
	if !v.escaped {
		return raw
	}
	*scratch = unquote((*scratch)[:0], raw)
	return *scratch
}
