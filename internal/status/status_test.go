package status

import "testing"

func TestFromExit(t *testing.T) {
	tests := []struct {
		code      int
		dsn       string
		temporary bool
		known     bool
	}{
		{TempFail, "4.3.0", true, true},
		{OSErr, "4.3.0", true, true},
		{NoUser, "5.1.1", false, true},
		{DataErr, "5.6.0", false, true},
		{Config, "5.3.5", false, true},
		{1, "", false, false},
		{127, "", false, false},
	}
	for _, tt := range tests {
		e, ok := FromExit(tt.code)
		if ok != tt.known || ok && (e.DSN != tt.dsn || e.Temporary() != tt.temporary || e.Text == "") {
			t.Errorf("FromExit(%d) = %+v, %v; want %s temporary=%v known=%v", tt.code, e, ok, tt.dsn, tt.temporary, tt.known)
		}
	}
}
