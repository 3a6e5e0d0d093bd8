package reference

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"

	"github.com/cordkit/cordkit/protocols"
)

// encodeBody returns the body of one attempt and its Content-Type: the
// JSON body as is, or, with files, a multipart/form-data body whose
// payload_json part holds the JSON and whose files[n] parts hold the files.
// The body is built in memory, so that it can be sent again on a retry and
// no goroutine is needed to stream it.
func encodeBody(req *protocols.Request, files *fileSet) ([]byte, string, error) {
	if len(req.Files) == 0 {
		if req.Body == nil {
			return nil, "", nil
		}
		return req.Body, "application/json", nil
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if req.Body != nil {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="payload_json"`)
		h.Set("Content-Type", "application/json")
		part, err := w.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := part.Write(req.Body); err != nil {
			return nil, "", err
		}
	}
	for i, f := range req.Files {
		if f.Reader == nil {
			return nil, "", fmt.Errorf("file %d (%q) has no Reader", i, cleanName(f.Name))
		}
		ct := f.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", multipart.FileContentDisposition(fmt.Sprintf("files[%d]", i), cleanName(f.Name)))
		h.Set("Content-Type", cleanName(ct))
		part, err := w.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := io.Copy(part, f.Reader); err != nil {
			return nil, "", fmt.Errorf("reading file %d (%q): %w", i, cleanName(f.Name), err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	files.sent()
	return buf.Bytes(), w.FormDataContentType(), nil
}

// cleanName removes line breaks, which would end a part's header early.
func cleanName(s string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}

// fileSet remembers where each file of a request started, so that a retry
// can read it again.
type fileSet struct {
	files []protocols.File
	start []int64 // offset before the first read; -1 when the file cannot seek
	read  bool    // the files have been read once
}

func newFileSet(files []protocols.File) fileSet {
	fs := fileSet{files: files}
	if len(files) > 0 {
		fs.start = make([]int64, len(files))
	}
	for i, f := range files {
		fs.start[i] = -1
		if s, ok := f.Reader.(io.Seeker); ok {
			if pos, err := s.Seek(0, io.SeekCurrent); err == nil {
				fs.start[i] = pos
			}
		}
	}
	return fs
}

// sent notes that the files have been read.
func (fs *fileSet) sent() { fs.read = true }

// rewindable reports whether the files can be read again.
func (fs *fileSet) rewindable() bool {
	if !fs.read {
		return true
	}
	for _, pos := range fs.start {
		if pos < 0 {
			return false
		}
	}
	return true
}

// rewind moves every file back to its start, reporting false when one
// cannot be.
func (fs *fileSet) rewind() bool {
	if !fs.rewindable() {
		return false
	}
	if !fs.read {
		return true
	}
	for i, f := range fs.files {
		if _, err := f.Reader.(io.Seeker).Seek(fs.start[i], io.SeekStart); err != nil {
			return false
		}
	}
	return true
}
