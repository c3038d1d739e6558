// Package translate converts between the API dialects the gateway speaks and
// the one internal form it forwards to neurons: OpenAI chat completions.
//
// Everything here is a pure function over JSON bytes or a stream converter
// writing Server-Sent Events to an io.Writer; there is no HTTP in this
// package. Request translators are lenient: fields they do not map are
// accepted and ignored, never refused. Malformed input is answered with an
// *Error carrying the HTTP status and the message the client should see.
//
// The translation functions are safe for concurrent use. Stream converters
// (AnthropicStream, ResponsesStream) and SSEReader are not; one goroutine
// owns each. design.md beside this file lists every mapping.
package translate
