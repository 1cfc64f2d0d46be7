package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// The wake socket is a unix datagram socket at queue_dir/wake; a datagram
// holds one queue ID. It is spoken with raw sockets rather than package net,
// which would cost every sendmail run its start-up time.

// ErrNoRunner: no runner daemon listens on the queue's wake socket.
var ErrNoRunner = errors.New("no queue runner is listening")

// Wake tells a running runner that message id is waiting, so it is attempted
// at once rather than at the next queue scan; "" asks for a flush, a scan
// that attempts every deferred recipient now. It returns ErrNoRunner when no
// runner listens, and an error when the wake-up could not be sent (no
// permission, or a runner too busy to take it); mail that was queued waits
// in the queue either way, so callers that queue mail may ignore it.
func (q *Queue) Wake(id string) error {
	name := q.path(wakeName)
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("queue: wake socket: %w", err)
	}
	defer syscall.Close(fd)
	err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: name})
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("queue: %s: %w", name, ErrNoRunner)
	}
	if err == nil {
		err = syscall.Sendto(fd, []byte(id), syscall.MSG_DONTWAIT, nil)
	}
	if err != nil {
		return fmt.Errorf("queue: wake %s: %w", name, err)
	}
	return nil
}

// WakeListener receives the wake-ups that Wake sends.
type WakeListener struct {
	f    *os.File
	name string
	lock *os.File // wake.lock, flock'd
}

// ErrListening: another process already listens for the queue's wake-ups
// (a runner daemon, perhaps smtpd's).
var ErrListening = errors.New("another runner daemon serves this queue")

// ListenWake binds the queue's wake socket, group-writable so that setgid
// sendmail can reach it. One runner listens per queue: it holds a lock on
// wake.lock while it does, and a second gets ErrListening.
func (q *Queue) ListenWake() (*WakeListener, error) {
	lock, err := os.OpenFile(q.path(wakeName+".lock"), os.O_RDONLY|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue: wake lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue %s: %w", q.dir, ErrListening)
		}
		return nil, fmt.Errorf("queue: wake lock: %w", err)
	}
	l, err := q.listenWake()
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.lock = lock
	return l, nil
}

func (q *Queue) listenWake() (*WakeListener, error) {
	name := q.path(wakeName)
	// A socket left by a runner that died would refuse the bind.
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("queue: wake socket: %w", err)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("queue: wake socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: name}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("queue: wake socket %s: %w", name, err)
	}
	if err := os.Chmod(name, 0o660); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("queue: wake socket: %w", err)
	}
	// A non-blocking descriptor gives a File that waits in the runtime's
	// poller, so that Close ends a pending Next.
	return &WakeListener{f: os.NewFile(uintptr(fd), name), name: name}, nil
}

// Next blocks until a wake-up arrives and returns the message ID it names
// ("" when the sender named none or something that is not an ID).
func (l *WakeListener) Next() (string, error) {
	var buf [64]byte
	n, err := l.f.Read(buf[:])
	if errors.Is(err, io.EOF) {
		// An os.File reads an empty datagram (a flush) as EOF; a datagram
		// socket has no end otherwise, and a closed one says ErrClosed.
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if id := string(buf[:n]); ValidID(id) {
		return id, nil
	}
	return "", nil
}

// Close stops listening and removes the socket.
func (l *WakeListener) Close() error {
	err := l.f.Close()
	os.Remove(l.name)
	l.lock.Close()
	return err
}
