package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// spinner animates a message on a terminal until stopped, then erases it.
type spinner struct {
	w    io.Writer
	msg  string
	stop chan struct{}
	once sync.Once
	done chan struct{}
}

var spinFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func startSpinner(w io.Writer, msg string) *spinner {
	s := &spinner{w: w, msg: msg, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *spinner) run() {
	defer close(s.done)
	start := time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		fmt.Fprintf(s.w, "\r\033[K%s %s (%ds)", spinFrames[i%len(spinFrames)], s.msg, int(time.Since(start)/time.Second))
		select {
		case <-s.stop:
			fmt.Fprint(s.w, "\r\033[K")
			return
		case <-t.C:
		}
	}
}

// Stop erases the spinner; a nil spinner does nothing.
func (s *spinner) Stop() {
	if s == nil {
		return
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
