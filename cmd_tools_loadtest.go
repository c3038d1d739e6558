package main

import "helexa/internal/loadtest"

func init() {
	toolCommands = append(toolCommands, loadtest.Command())
}
