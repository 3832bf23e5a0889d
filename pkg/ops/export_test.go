package ops

// AssertClose shares assertClose with package ops_test, which cannot be
// package ops because internal/npy, which it uses, imports ops.
var AssertClose = assertClose

// ReLURef shares reluRef with package ops_test.
var ReLURef = reluRef
