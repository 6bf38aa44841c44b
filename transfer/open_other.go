//go:build !unix

package transfer

import "os"

// readOnly are the flags a local file to send is opened with.
const readOnly = os.O_RDONLY
