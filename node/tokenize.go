package node

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

// tokenizeRequest is POST /tokenize: plain content, or chat messages
// rendered with the model's template.
type tokenizeRequest struct {
	Model      string          `json:"model"`
	Content    *string         `json:"content"`
	AddSpecial bool            `json:"add_special"`
	Messages   json.RawMessage `json:"messages"`
	Tools      json.RawMessage `json:"tools"`
}

type tokenizeResponse struct {
	Tokens []int32 `json:"tokens"`
	Count  int     `json:"count"`
}

func (s *Server) handleTokenize(c echo.Context) error {
	var req tokenizeRequest
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	in, err := s.instanceFor(req.Model)
	if err != nil {
		return writeError(c, err)
	}
	hasMsgs := len(bytes.TrimSpace(req.Messages)) > 0 && string(bytes.TrimSpace(req.Messages)) != "null"
	switch {
	case req.Content != nil && hasMsgs:
		return writeError(c, badRequest("content", "give content or messages, not both"))
	case req.Content != nil:
		err = in.checkPromptBytes("content", len(*req.Content), false)
	case hasMsgs:
		err = in.checkChatBytes(req.Messages, req.Tools)
	default:
		return writeError(c, badRequest("content", "content or messages is required"))
	}
	if err != nil {
		return writeError(c, err)
	}
	// Tokenizing is work like generating: it waits for a place too (a
	// short hold).
	release, err := in.admit(c.Request().Context())
	if err != nil {
		return writeError(c, err)
	}
	defer release()
	var ids []int32
	switch {
	case req.Content != nil:
		// As llama.cpp's /tokenize: special tokens are not added, but
		// special-token text is recognised.
		ids = in.m.Encode(*req.Content, req.AddSpecial, true)
	default:
		_, ids, err = in.chatPrompt(req.Messages, req.Tools, nil)
		if err != nil {
			return writeError(c, err)
		}
	}
	release()
	if ids == nil {
		ids = []int32{}
	}
	return c.JSON(http.StatusOK, tokenizeResponse{Tokens: ids, Count: len(ids)})
}
