package realnode

import "testing"

// A slot is held as long as its holder lives: a second taker is refused
// until the first lets it go.
func TestTakeSlotIsExclusive(t *testing.T) {
	s, ok := TakeSlot(MaxSlots)
	if !ok {
		t.Skipf("slot %d is held by a running node", MaxSlots)
	}
	if _, again := TakeSlot(MaxSlots); again {
		t.Fatal("a held slot was taken a second time")
	}
	s.Release()
	s, ok = TakeSlot(MaxSlots)
	if !ok {
		t.Fatal("a released slot could not be taken")
	}
	s.Release()
}
